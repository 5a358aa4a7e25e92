// The git layer against repositories made with the real git binary in temp
// directories (no servers, no network: remotes are local paths).
#include "git_sandbox.hpp"
#include "snapshotter/git/git.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <set>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace std::chrono_literals;

using namespace snapshotter::test_support;

namespace {

std::vector<std::string> names_of(const RefMap& refs) {
    std::vector<std::string> out;
    for (const auto& [name, target] : refs)
        out.push_back(name);
    return out;
}

} // namespace

// ---------------------------------------------------------------- pure helpers

TEST(RefMatches, PrefixAndExact) {
    EXPECT_TRUE(ref_matches("refs/heads/*", "refs/heads/main"));
    EXPECT_TRUE(ref_matches("refs/heads/*", "refs/heads/a/b/c"));
    EXPECT_FALSE(ref_matches("refs/heads/*", "refs/tags/v1"));
    EXPECT_FALSE(ref_matches("refs/heads/*", "refs/headsx/main"));
    EXPECT_FALSE(ref_matches("refs/heads/*", "refs/heads"));
    EXPECT_TRUE(ref_matches("refs/*", "refs/pull/1/head"));
    EXPECT_TRUE(ref_matches("refs/heads/main", "refs/heads/main"));
    EXPECT_FALSE(ref_matches("refs/heads/main", "refs/heads/main2"));
    EXPECT_FALSE(ref_matches("refs/heads/main", "refs/heads/mai"));
    EXPECT_TRUE(ref_matches("refs/heads/release-*", "refs/heads/release-1.0"));
    EXPECT_FALSE(ref_matches("refs/heads/release-*", "refs/heads/releases"));
}

TEST(SelectRefs, KeepsMatchingRefsOnly) {
    RefMap refs = {{"refs/heads/main", {"a", ""}},
                   {"refs/heads/dev/x", {"b", ""}},
                   {"refs/tags/v1", {"c", "d"}},
                   {"refs/pull/1/head", {"e", ""}},
                   {"refs/notes/commits", {"f", ""}}};
    auto selected = select_refs(refs, {"refs/heads/*", "refs/tags/*"});
    EXPECT_EQ(names_of(selected),
              (std::vector<std::string>{"refs/heads/dev/x", "refs/heads/main", "refs/tags/v1"}));
    EXPECT_EQ(selected.at("refs/tags/v1"), (RefTarget{"c", "d"}));
    EXPECT_TRUE(select_refs(refs, {}).empty());
    EXPECT_EQ(select_refs(refs, {"refs/*"}), refs);
    // Overlapping patterns do not duplicate anything.
    EXPECT_EQ(select_refs(refs, {"refs/heads/*", "refs/heads/main"}).size(), 2u);
}

TEST(ObjectFormatOf, ByLength) {
    EXPECT_EQ(object_format_of(std::string(40, 'a')), "sha1");
    EXPECT_EQ(object_format_of(std::string(64, 'a')), "sha256");
    EXPECT_EQ(object_format_of(""), "");
    EXPECT_EQ(object_format_of(std::string(41, 'a')), "");
}

// ---------------------------------------------------------------- against the real git

TEST(Git, CreateReadsTheVersion) {
    auto git = make_git();
    EXPECT_FALSE(git.version().empty());
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(git.version()[0]))) << git.version();
    EXPECT_EQ(git.version().find("git version"), std::string::npos);
}

TEST(Git, CredentialsLiveInAPrivateFileOnlyWhileGitRuns) {
    auto git = Git::create();
    ASSERT_TRUE(git) << git.error().message;
    auto scratch = TempDir::create("test-credential");
    ASSERT_TRUE(scratch);
    const char* old_tmpdir = std::getenv("TMPDIR");
    std::string saved = old_tmpdir != nullptr ? old_tmpdir : "";
    ::setenv("TMPDIR", scratch->path().c_str(), 1);
    // Nothing listens on port 1: git asks for no credential, but the file is made and removed.
    Remote remote{"http://127.0.0.1:1/x.git", TransportPolicy{true, true}, "u", "tok-unit-secret"};
    auto listed = git->ls_remote(remote, 20s);
    EXPECT_FALSE(listed);
    EXPECT_EQ(listed.error().message.find("tok-unit-secret"), std::string::npos);
    EXPECT_TRUE(fs::is_empty(scratch->path())) << "the credential directory outlived git";
    // A newline would let the token inject credential lines: refused before git runs.
    remote.password = "tok\nhost=evil";
    auto refused = git->ls_remote(remote, 20s);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind, ErrorKind::Payload);
    EXPECT_EQ(refused.error().message.find("evil"), std::string::npos);
    if (old_tmpdir != nullptr)
        ::setenv("TMPDIR", saved.c_str(), 1);
    else
        ::unsetenv("TMPDIR");
}

TEST(Git, LocalRefsPeelAnnotatedTags) {
    Sandbox box;
    auto repo = box.make_upstream();
    auto git = make_git();
    auto refs = git.local_refs(repo);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(names_of(*refs), (std::vector<std::string>{"refs/heads/feature", "refs/heads/main",
                                                         "refs/tags/v0.1", "refs/tags/v1.0"}));
    EXPECT_EQ(refs->at("refs/heads/main"), (RefTarget{box.git(repo, {"rev-parse", "main"}), ""}));
    EXPECT_EQ(refs->at("refs/heads/feature"), (RefTarget{box.git(repo, {"rev-parse", "feature"}), ""}));
    // Lightweight: the commit itself, nothing to peel.
    EXPECT_EQ(refs->at("refs/tags/v0.1"), (RefTarget{box.git(repo, {"rev-parse", "main~1"}), ""}));
    // Annotated: the tag object, peeled to the commit.
    const auto& annotated = refs->at("refs/tags/v1.0");
    EXPECT_EQ(annotated.oid, box.git(repo, {"rev-parse", "refs/tags/v1.0"}));
    EXPECT_EQ(annotated.peeled, box.git(repo, {"rev-parse", "main"}));
    EXPECT_NE(annotated.oid, annotated.peeled);
    EXPECT_EQ(object_format_of(annotated.oid), "sha1");
}

TEST(Git, LocalRefsOfAnEmptyRepository) {
    Sandbox box;
    auto git = make_git();
    ASSERT_TRUE(git.init_bare(box.dir() / "empty.git", "sha1"));
    auto refs = git.local_refs(box.dir() / "empty.git");
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_TRUE(refs->empty());
}

TEST(Git, LocalRefsOfAMissingRepositoryIsAGitError) {
    Sandbox box;
    fs::create_directories(box.dir() / "not-a-repo");
    auto git = make_git();
    auto refs = git.local_refs(box.dir() / "not-a-repo");
    ASSERT_FALSE(refs);
    EXPECT_EQ(refs.error().kind, ErrorKind::Git);
}

TEST(Git, BundleCreateStreamsToASinkThenBundleHeadsReadsIt) {
    Sandbox box;
    auto repo = box.make_upstream();
    auto git = make_git();
    auto refs = git.local_refs(repo);
    ASSERT_TRUE(refs);

    std::string bundle;
    std::size_t chunks = 0;
    auto status = git.bundle_create(
        repo, {"refs/heads/main", "refs/tags/v1.0", "refs/tags/v0.1"},
        [&](std::span<const std::byte> chunk) -> Status {
            bundle.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            ++chunks;
            return {};
        },
        k_timeout);
    ASSERT_TRUE(status) << status.error().message;
    EXPECT_GT(chunks, 0u);
    EXPECT_TRUE(bundle.starts_with("# v2 git bundle\n")) << bundle.substr(0, 40);

    const auto path = box.dir() / "out.bundle";
    Sandbox::write(path, bundle);
    auto heads = git.bundle_heads(path);
    ASSERT_TRUE(heads) << heads.error().message;
    // Exactly the refs asked for, pointing where the repository's refs point.
    EXPECT_EQ(names_of(*heads),
              (std::vector<std::string>{"refs/heads/main", "refs/tags/v0.1", "refs/tags/v1.0"}));
    for (const auto& [name, target] : *heads)
        EXPECT_EQ(target.oid, refs->at(name).oid) << name;
    // feature's commit is not in it.
    EXPECT_EQ(bundle.find(refs->at("refs/heads/feature").oid), std::string::npos);
}

TEST(Git, BundleCreateSinkErrorIsReturned) {
    Sandbox box;
    auto repo = box.make_upstream();
    auto git = make_git();
    auto status = git.bundle_create(
        repo, {"refs/heads/main"},
        [](std::span<const std::byte>) -> Status { return fail(Error::storage("no space left")); },
        k_timeout);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, ErrorKind::Storage);
    EXPECT_NE(status.error().message.find("no space left"), std::string::npos);
}

TEST(Git, BundleCreateOfUnknownRefFails) {
    Sandbox box;
    auto repo = box.make_upstream();
    auto git = make_git();
    auto status = git.bundle_create(
        repo, {"refs/heads/does-not-exist"}, [](std::span<const std::byte>) -> Status { return {}; },
        k_timeout);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, ErrorKind::Git);
    EXPECT_TRUE(status.error().message.starts_with("bundle create: ")) << status.error().message;
}

TEST(Git, BundleHeadsOfAMissingFileIsAGitError) {
    Sandbox box;
    auto git = make_git();
    auto heads = git.bundle_heads(box.dir() / "missing.bundle");
    ASSERT_FALSE(heads);
    EXPECT_EQ(heads.error().kind, ErrorKind::Git);
}

TEST(Git, InitBareWithObjectFormat) {
    Sandbox box;
    auto git = make_git();
    for (std::string format : {"sha1", "sha256"}) {
        auto path = box.dir() / (format + ".git");
        ASSERT_TRUE(git.init_bare(path, format));
        EXPECT_EQ(box.git(path, {"rev-parse", "--show-object-format"}), format);
        EXPECT_EQ(box.git(path, {"rev-parse", "--is-bare-repository"}), "true");
    }
    EXPECT_FALSE(git.init_bare(box.dir() / "bad.git", "md5"));
}

TEST(Git, RestoreMakesRefsExactlyEqualIncludingDeletions) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto source = git.local_refs(upstream);
    ASSERT_TRUE(source);

    // A bundle of every ref plus one that the manifest no longer has.
    box.git(upstream, {"branch", "stale", "main~1"});
    const auto bundle_path = box.dir() / "all.bundle";
    std::string bundle;
    ASSERT_TRUE(git.bundle_create(
        upstream,
        {"refs/heads/main", "refs/heads/feature", "refs/heads/stale", "refs/tags/v0.1", "refs/tags/v1.0"},
        [&](std::span<const std::byte> chunk) -> Status {
            bundle.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            return {};
        },
        k_timeout));
    Sandbox::write(bundle_path, bundle);

    const auto restored = box.dir() / "restored.git";
    ASSERT_TRUE(git.init_bare(restored, "sha1"));
    auto fetched = git.fetch_bundle(restored, bundle_path, k_timeout);
    ASSERT_TRUE(fetched) << fetched.error().message;
    auto after_fetch = git.local_refs(restored);
    ASSERT_TRUE(after_fetch);
    EXPECT_TRUE(after_fetch->contains("refs/heads/stale"));

    // The manifest: the source refs, with main rewound and HEAD on feature.
    RefMap manifest = *source;
    manifest["refs/heads/main"].oid = box.git(upstream, {"rev-parse", "main~1"});
    auto set = git.set_refs(restored, manifest, std::string("refs/heads/feature"));
    ASSERT_TRUE(set) << set.error().message;

    auto final_refs = git.local_refs(restored);
    ASSERT_TRUE(final_refs);
    EXPECT_EQ(*final_refs, manifest);
    EXPECT_FALSE(final_refs->contains("refs/heads/stale"));
    EXPECT_EQ(box.git(restored, {"symbolic-ref", "HEAD"}), "refs/heads/feature");
    EXPECT_TRUE(git.fsck(restored, k_timeout));

    // Setting the same map again changes nothing and succeeds.
    ASSERT_TRUE(git.set_refs(restored, manifest, std::nullopt));
    EXPECT_EQ(*git.local_refs(restored), manifest);
    EXPECT_EQ(box.git(restored, {"symbolic-ref", "HEAD"}), "refs/heads/feature");
}

TEST(Git, SetRefsHandlesADirectoryFileSwap) {
    // refs/heads/a must go for refs/heads/a/b to exist.
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    box.git(upstream, {"branch", "a", "main"});
    const auto repo = box.dir() / "swap.git";
    box.git(box.dir(), {"clone", "--quiet", "--mirror", upstream.string(), repo.string()});
    auto current = git.local_refs(repo);
    ASSERT_TRUE(current);
    RefMap wanted = *current;
    wanted.erase("refs/heads/a");
    wanted["refs/heads/a/b"] = {box.git(upstream, {"rev-parse", "feature"}), ""};
    auto set = git.set_refs(repo, wanted, std::nullopt);
    ASSERT_TRUE(set) << set.error().message;
    EXPECT_EQ(*git.local_refs(repo), wanted);

    // And back: refs/heads/a/b goes, refs/heads/a returns.
    set = git.set_refs(repo, *current, std::nullopt);
    ASSERT_TRUE(set) << set.error().message;
    EXPECT_EQ(*git.local_refs(repo), *current);
}

TEST(Git, SetRefsToAnEmptyMapDeletesEverything) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const auto repo = box.dir() / "clone.git";
    box.git(box.dir(), {"clone", "--quiet", "--mirror", upstream.string(), repo.string()});
    ASSERT_TRUE(git.set_refs(repo, {}, std::nullopt));
    auto refs = git.local_refs(repo);
    ASSERT_TRUE(refs);
    EXPECT_TRUE(refs->empty());
}

TEST(Git, SetRefsToAMissingObjectFails) {
    Sandbox box;
    auto git = make_git();
    const auto repo = box.dir() / "empty.git";
    ASSERT_TRUE(git.init_bare(repo, "sha1"));
    auto set = git.set_refs(repo, {{"refs/heads/main", {std::string(40, '1'), ""}}}, std::nullopt);
    ASSERT_FALSE(set);
    EXPECT_EQ(set.error().kind, ErrorKind::Git);
}

TEST(Git, FsckFailsOnACorruptedObject) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    ASSERT_TRUE(git.fsck(upstream, k_timeout));

    // Corrupt the loose blob of README's first version.
    std::string blob = box.git(upstream, {"rev-parse", "v0.1:README"});
    auto object = upstream / ".git" / "objects" / blob.substr(0, 2) / blob.substr(2);
    ASSERT_TRUE(fs::exists(object)) << object;
    fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
    auto content = read_file(object);
    ASSERT_TRUE(content);
    std::string corrupted = *content;
    for (std::size_t i = corrupted.size() / 2; i < corrupted.size(); ++i)
        corrupted[i] = static_cast<char>(corrupted[i] ^ 0x5a);
    Sandbox::write(object, corrupted);

    auto checked = git.fsck(upstream, k_timeout);
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().kind, ErrorKind::Integrity);
    EXPECT_TRUE(checked.error().message.starts_with("git fsck: ")) << checked.error().message;
    EXPECT_GT(checked.error().message.size(), std::string("git fsck: ").size());
}

TEST(Git, FsckFailsOnAMissingObject) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    std::string blob = box.git(upstream, {"rev-parse", "feature:feature.txt"});
    fs::remove(upstream / ".git" / "objects" / blob.substr(0, 2) / blob.substr(2));
    auto checked = git.fsck(upstream, k_timeout);
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error().kind, ErrorKind::Integrity);
    EXPECT_NE(checked.error().message.find(blob), std::string::npos) << checked.error().message;
}

TEST(Git, LsRemoteOfALocalRepository) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto state = git.ls_remote({.url = upstream.string()}, k_timeout);
    ASSERT_TRUE(state) << state.error().message;
    auto local = git.local_refs(upstream);
    ASSERT_TRUE(local);
    EXPECT_EQ(state->refs, *local);
    ASSERT_TRUE(state->head);
    EXPECT_EQ(*state->head, "refs/heads/main");
}

TEST(Git, TransportAllowListReachesGit) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    Remote remote{.url = "file://" + upstream.string(), .policy = {.allow_http = false, .allow_file = false}};
    auto state = git.ls_remote(remote, k_timeout);
    ASSERT_FALSE(state);
    EXPECT_EQ(state.error().kind, ErrorKind::Git);
    EXPECT_TRUE(state.error().message.starts_with("ls-remote file://")) << state.error().message;

    // ext:: never runs, whatever the policy.
    const auto marker = box.dir() / "pwned";
    Remote ext{.url = "ext::sh -c touch% " + marker.string(),
               .policy = {.allow_http = true, .allow_file = true}};
    EXPECT_FALSE(git.ls_remote(ext, k_timeout));
    EXPECT_FALSE(fs::exists(marker));
}

TEST(Git, PasswordsNeverAppearInErrors) {
    Sandbox box;
    auto git = make_git();
    Remote remote{
        .url = (box.dir() / "missing.git").string(), .username = "bot", .password = "pw-never-shown-4242"};
    auto state = git.ls_remote(remote, k_timeout);
    ASSERT_FALSE(state);
    EXPECT_EQ(state.error().message.find("pw-never-shown-4242"), std::string::npos);
}

TEST(Git, UpdateMirrorFetchesSelectedRefsAndPrunes) {
    Sandbox box;
    auto upstream = box.make_upstream();
    box.git(upstream, {"branch", "doomed"});
    auto git = make_git();
    const auto mirror = box.dir() / "cache" / "mirror.git";
    Remote remote{.url = upstream.string()};
    auto updated = git.update_mirror(mirror, "sha1", remote, {"refs/heads/*"}, k_timeout);
    ASSERT_TRUE(updated) << updated.error().message;
    auto refs = git.local_refs(mirror);
    ASSERT_TRUE(refs);
    EXPECT_EQ(names_of(*refs),
              (std::vector<std::string>{"refs/heads/doomed", "refs/heads/feature", "refs/heads/main"}));

    // Upstream deletes a branch and moves another; the payload adds tags.
    box.git(upstream, {"branch", "-D", "doomed"});
    box.git(upstream, {"branch", "-f", "feature", "main"});
    updated = git.update_mirror(mirror, "sha1", remote, {"refs/heads/*", "refs/tags/*"}, k_timeout);
    ASSERT_TRUE(updated) << updated.error().message;
    refs = git.local_refs(mirror);
    ASSERT_TRUE(refs);
    EXPECT_EQ(*refs, *git.local_refs(upstream));

    // The payload narrows to main only: the other refs leave the mirror.
    updated = git.update_mirror(mirror, "sha1", remote, {"refs/heads/main"}, k_timeout);
    ASSERT_TRUE(updated) << updated.error().message;
    refs = git.local_refs(mirror);
    ASSERT_TRUE(refs);
    EXPECT_EQ(names_of(*refs), std::vector<std::string>{"refs/heads/main"});
}

TEST(Git, UpdateMirrorRefsReturnsTheRefsAndPacksManyLooseOnes) {
    Sandbox box;
    auto upstream = box.make_upstream();
    for (std::size_t i = 0; i < k_loose_refs_to_pack + 10; ++i)
        box.git(upstream, {"branch", "b" + std::to_string(i)});
    auto git = make_git();
    const auto mirror = box.dir() / "cache" / "mirror.git";
    Remote remote{.url = upstream.string()};
    auto refs = git.update_mirror_refs(mirror, "sha1", remote, {"refs/heads/*"}, k_timeout, Shallow::refuse);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(*refs, *git.local_refs(mirror));
    EXPECT_EQ(refs->size(), k_loose_refs_to_pack + 12); // main, feature and the new branches
    // Packed as a clone --mirror packs them: no loose ref file is left.
    EXPECT_TRUE(fs::exists(mirror / "packed-refs"));
    EXPECT_FALSE(fs::exists(mirror / "refs" / "heads" / "b0"));

    // A few moved refs stay loose; a narrowed payload prunes the rest.
    box.git(upstream, {"branch", "-f", "feature", "b0~0"});
    refs = git.update_mirror_refs(mirror, "sha1", remote, {"refs/heads/main"}, k_timeout, Shallow::refuse);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(names_of(*refs), std::vector<std::string>{"refs/heads/main"});
    EXPECT_EQ(*refs, *git.local_refs(mirror));
}

TEST(Git, UpdateMirrorRefsRemovesTheKeepFilesOfAKilledFetch) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const auto mirror = box.dir() / "cache" / "mirror.git";
    Remote remote{.url = upstream.string()};
    ASSERT_TRUE(git.update_mirror_refs(mirror, "sha1", remote, {"refs/heads/*"}, k_timeout, Shallow::refuse));
    // Every fetch keeps its pack (fetch.unpackLimit=1), and git removes its .keep once done.
    std::vector<fs::path> packs;
    std::size_t keeps = 0;
    for (const auto& entry : fs::directory_iterator(mirror / "objects" / "pack")) {
        if (entry.path().extension() == ".pack")
            packs.push_back(entry.path());
        keeps += entry.path().extension() == ".keep" ? 1 : 0;
    }
    ASSERT_EQ(packs.size(), 1U);
    EXPECT_EQ(keeps, 0U);
    // A killed fetch's .keep goes; one that someone else wrote stays.
    auto keep = fs::path(packs[0]).replace_extension(".keep");
    std::ofstream(keep) << "fetch-pack 4242 on host\n";
    auto other = mirror / "objects" / "pack" / "pack-0.keep";
    std::ofstream(other) << "an operator's own\n";
    box.git(upstream, {"branch", "-f", "feature", "main"});
    ASSERT_TRUE(git.update_mirror_refs(mirror, "sha1", remote, {"refs/heads/*"}, k_timeout, Shallow::refuse));
    EXPECT_FALSE(fs::exists(keep));
    EXPECT_TRUE(fs::exists(other));
}

TEST(Git, UpdateMirrorRefsToFetchesTheDifferingRefsByNameAndDeletesTheUnlisted) {
    Sandbox box;
    auto upstream = box.make_upstream();
    box.git(upstream, {"branch", "gone"});
    box.git(upstream, {"branch", "a"});
    auto git = make_git();
    const auto mirror = box.dir() / "cache" / "mirror.git";
    Remote remote{.url = upstream.string()};
    const std::vector<std::string> patterns = {"refs/heads/*", "refs/tags/*"};
    // A new mirror is fetched by its patterns.
    auto listed = git.local_refs(upstream);
    ASSERT_TRUE(listed);
    auto refs = git.update_mirror_refs_to(mirror, "sha1", remote, patterns, *listed, k_timeout,
                                          Shallow::refuse, FetchBy::name);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(*refs, *listed);
    const auto main_oid = listed->at("refs/heads/main").oid;
    ASSERT_TRUE(git.add_refs(mirror, {{"refs/snapshotter/preserved/x", {main_oid, ""}}}));
    // A fetch by patterns writes a commit-graph (k_commit_graph_refs).
    const auto chain = mirror / "objects" / "info" / "commit-graphs" / "commit-graph-chain";
    auto layers = read_file(chain, 1 << 20);
    ASSERT_TRUE(layers) << layers.error().message;

    // A night: a new commit on main, a branch deleted, refs/heads/a replaced
    // by refs/heads/a/b, an annotated tag.
    box.write(upstream / "night.txt", "night\n");
    box.git(upstream, {"add", "night.txt"});
    box.git(upstream, {"commit", "--quiet", "-m", "night"});
    box.git(upstream, {"branch", "-D", "gone"});
    box.git(upstream, {"branch", "-D", "a"});
    box.git(upstream, {"branch", "a/b"});
    box.git(upstream, {"tag", "-a", "-m", "n", "night-1"});
    listed = git.local_refs(upstream);
    ASSERT_TRUE(listed);
    // The kept mirror fetches by the listed names, never by the patterns
    // (none are given here: a fetch by patterns would delete every ref).
    refs = git.update_mirror_refs_to(mirror, "sha1", remote, {}, *listed, k_timeout, Shallow::refuse,
                                     FetchBy::name);
    ASSERT_TRUE(refs) << refs.error().message;
    auto expected = *listed;
    expected["refs/snapshotter/preserved/x"] = {main_oid, ""};
    EXPECT_EQ(*refs, expected);
    EXPECT_EQ(*refs, *git.local_refs(mirror));
    // The new commit came with the fetch.
    auto types = git.object_types(mirror, {listed->at("refs/heads/main").oid});
    ASSERT_TRUE(types);
    EXPECT_EQ(types->size(), 1u);
    // A mirror of fewer than k_commit_graph_refs refs gets no new layer.
    EXPECT_EQ(read_file(chain, 1 << 20).value_or(""), *layers);
}

TEST(Git, UpdateMirrorRefsToAddsACommitGraphLayerToAMirrorOfManyRefs) {
    Sandbox box;
    auto upstream = box.make_upstream();
    const std::string head = box.git(upstream, {"rev-parse", "main"});
    std::string many;
    for (std::size_t i = 0; i < k_commit_graph_refs; ++i)
        many += "create refs/pull/" + std::to_string(i) + "/head " + head + "\n";
    ProcessOptions options;
    options.cwd = upstream;
    options.stdin_data = many;
    options.env = {"PATH=/usr/bin:/bin", "HOME=" + box.dir().string(), "GIT_CONFIG_NOSYSTEM=1"};
    auto made = run_process({"git", "update-ref", "--stdin"}, options);
    ASSERT_TRUE(made && made->ok());
    auto git = make_git();
    const auto mirror = box.dir() / "cache" / "mirror.git";
    Remote remote{.url = upstream.string()};
    const std::vector<std::string> patterns = {"refs/heads/*", "refs/pull/*"};
    auto listed = git.local_refs(upstream);
    ASSERT_TRUE(listed);
    *listed = select_refs(*listed, patterns);
    auto refs = git.update_mirror_refs_to(mirror, "sha1", remote, patterns, *listed, k_timeout,
                                          Shallow::refuse, FetchBy::name);
    ASSERT_TRUE(refs) << refs.error().message;
    const auto chain = mirror / "objects" / "info" / "commit-graphs" / "commit-graph-chain";
    auto before = read_file(chain, 1 << 20);
    ASSERT_TRUE(before) << before.error().message;

    box.write(upstream / "night.txt", "night\n");
    box.git(upstream, {"add", "night.txt"});
    box.git(upstream, {"commit", "--quiet", "-m", "night"});
    listed = git.local_refs(upstream);
    ASSERT_TRUE(listed);
    *listed = select_refs(*listed, patterns);
    refs = git.update_mirror_refs_to(mirror, "sha1", remote, {}, *listed, k_timeout, Shallow::refuse,
                                     FetchBy::name);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(*refs, *listed);
    // The night's commit is in a layer of its own on top of the first.
    auto after = read_file(chain, 1 << 20);
    ASSERT_TRUE(after) << after.error().message;
    EXPECT_TRUE(after->starts_with(*before)) << *before << " / " << *after;
    EXPECT_GT(after->size(), before->size());
    box.git(mirror, {"commit-graph", "verify"});
}

namespace {

// A kept mirror of `upstream` (refs/heads/* and refs/tags/*) made by a first
// update_mirror_refs_to; returns the listing it was made from.
RefMap make_kept_mirror(Git& git, const fs::path& upstream, const fs::path& mirror) {
    auto listed = git.local_refs(upstream);
    EXPECT_TRUE(listed);
    auto refs = git.update_mirror_refs_to(mirror, "sha1", Remote{.url = upstream.string()},
                                          {"refs/heads/*", "refs/tags/*"}, *listed, k_timeout,
                                          Shallow::refuse, FetchBy::object_id);
    EXPECT_TRUE(refs) << refs.error().message;
    return *listed;
}

// Commit `file` on upstream's main; returns the new commit.
std::string commit_on_main(Sandbox& box, const fs::path& upstream, const std::string& file) {
    box.write(upstream / file, file + "\n");
    box.git(upstream, {"add", file});
    box.git(upstream, {"commit", "--quiet", "-m", file});
    return box.git(upstream, {"rev-parse", "main"});
}

} // namespace

// update_mirror_refs_to() on a kept mirror of make_upstream(), made from `listed`.
class KeptMirror : public ::testing::Test {
  protected:
    Sandbox box;
    fs::path upstream = box.make_upstream();
    Git git = make_git();
    fs::path mirror = box.dir() / "cache" / "mirror.git";
    RefMap listed = make_kept_mirror(git, upstream, mirror);
};

TEST_F(KeptMirror, ByObjectIdStoresTheListedTipsNotTheServersLaterOnes) {
    // The night as listed: a new commit on main, a new branch, a deleted one.
    commit_on_main(box, upstream, "night.txt");
    box.git(upstream, {"branch", "new"});
    box.git(upstream, {"branch", "-D", "feature"});
    auto night = git.local_refs(upstream);
    ASSERT_TRUE(night);
    // After the listing the server moves main on and gains a ref that was not selected.
    const auto later = commit_on_main(box, upstream, "later.txt");
    box.git(upstream, {"branch", "unselected"});

    auto refs = git.update_mirror_refs_to(mirror, "sha1", Remote{.url = upstream.string()}, {}, *night,
                                          k_timeout, Shallow::refuse, FetchBy::object_id);
    ASSERT_TRUE(refs) << refs.error().message;
    // Exactly the listing (by name, git would store the server's later main).
    EXPECT_EQ(*refs, *night);
    EXPECT_EQ(*refs, *git.local_refs(mirror));
    box.git(mirror, {"fsck", "--connectivity-only", "--no-progress"});
    auto fetched_later = git.object_types(mirror, {later});
    ASSERT_TRUE(fetched_later);
    EXPECT_TRUE(fetched_later->empty()) << "the commit made after the listing was fetched";
}

TEST_F(KeptMirror, ByObjectIdOfTipsTheMirrorHoldsMakesNoConnection) {
    const auto fresh = commit_on_main(box, upstream, "night.txt");
    // main moved back to its first commit and a new tag there: the
    // mirror holds every listed object, so the remote is never contacted
    // (it no longer exists; by name the fetch would fail).
    const auto first = listed.at("refs/tags/v0.1").oid;
    listed["refs/heads/main"] = {first, ""};
    listed["refs/tags/old"] = {first, ""};
    listed.erase("refs/heads/feature");
    const Remote gone{.url = (box.dir() / "no-such-repository").string()};
    auto refs = git.update_mirror_refs_to(mirror, "sha1", gone, {}, listed, k_timeout, Shallow::refuse,
                                          FetchBy::object_id);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(*refs, listed);
    // A tip the mirror lacks does need the remote.
    auto lacking = listed;
    lacking["refs/heads/main"] = {fresh, ""};
    auto needs_remote = git.update_mirror_refs_to(mirror, "sha1", gone, {}, lacking, k_timeout,
                                                  Shallow::refuse, FetchBy::object_id);
    EXPECT_FALSE(needs_remote);
}

TEST_F(KeptMirror, ByObjectIdFetchesByNameWhenTheServerRefusesTheWant) {
    const auto now = commit_on_main(box, upstream, "night.txt");
    // Listed at an object the server does not hold (gone since the listing):
    // upload-pack refuses the want, and the fetch by name stores what the
    // server holds now, for the exactness check to compare with the listing.
    listed["refs/heads/main"] = {std::string(40, '1'), ""};
    auto refs = git.update_mirror_refs_to(mirror, "sha1", Remote{.url = upstream.string()}, {}, listed,
                                          k_timeout, Shallow::refuse, FetchBy::object_id);
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(refs->at("refs/heads/main").oid, now);
    // A listed value that is no object id is refused before git runs.
    listed["refs/heads/main"] = {"--upload-pack=touch", ""};
    auto bad = git.update_mirror_refs_to(mirror, "sha1", Remote{.url = upstream.string()}, {}, listed,
                                         k_timeout, Shallow::refuse, FetchBy::object_id);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("not a sha1 object id"), std::string::npos) << bad.error().message;
}

TEST(Git, CloneBundleMakesPackedRefsAndNoRemote) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto refs = git.local_refs(upstream);
    ASSERT_TRUE(refs);
    std::string bundle;
    ASSERT_TRUE(git.bundle_create(
        upstream, names_of(*refs),
        [&](std::span<const std::byte> chunk) -> Status {
            bundle.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            return {};
        },
        k_timeout));
    Sandbox::write(box.dir() / "full.bundle", bundle);
    const auto restored = box.dir() / "restored.git";
    auto cloned = git.clone_bundle(restored, box.dir() / "full.bundle", k_timeout);
    ASSERT_TRUE(cloned) << cloned.error().message;
    EXPECT_EQ(*git.local_refs(restored), *refs);
    EXPECT_TRUE(fs::exists(restored / "packed-refs"));
    std::ifstream config(restored / "config");
    std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("remote"), std::string::npos) << text;
    EXPECT_TRUE(git.fsck(restored, k_timeout));
    // A missing bundle is a git error, not a crash.
    EXPECT_FALSE(git.clone_bundle(box.dir() / "other.git", box.dir() / "missing.bundle", k_timeout));
}

TEST(Git, ProbeEmptyRemote) {
    Sandbox box;
    auto git = make_git();
    const auto sha1 = box.dir() / "empty1.git";
    const auto sha256 = box.dir() / "empty256.git";
    box.git(box.dir(), {"init", "--quiet", "--bare", "--initial-branch=trunk", sha1.string()});
    box.git(box.dir(), {"init", "--quiet", "--bare", "--object-format=sha256", sha256.string()});

    auto probed = git.probe_empty_remote({.url = sha1.string()}, k_timeout);
    ASSERT_TRUE(probed) << probed.error().message;
    EXPECT_EQ(probed->first, "sha1");
    EXPECT_EQ(probed->second, std::optional<std::string>("refs/heads/trunk"));

    auto probed256 = git.probe_empty_remote({.url = sha256.string()}, k_timeout);
    ASSERT_TRUE(probed256) << probed256.error().message;
    EXPECT_EQ(probed256->first, "sha256");
}

TEST(Git, Sha256RepositoryRoundTrip) {
    Sandbox box;
    auto upstream = box.make_upstream("up256", "sha256");
    auto git = make_git();
    auto refs = git.local_refs(upstream);
    ASSERT_TRUE(refs);
    EXPECT_EQ(object_format_of(refs->at("refs/heads/main").oid), "sha256");
    std::vector<std::string> names = names_of(*refs);
    std::string bundle;
    ASSERT_TRUE(git.bundle_create(
        upstream, names,
        [&](std::span<const std::byte> chunk) -> Status {
            bundle.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            return {};
        },
        k_timeout));
    EXPECT_TRUE(bundle.starts_with("# v3 git bundle\n")) << bundle.substr(0, 40);
    Sandbox::write(box.dir() / "b.bundle", bundle);
    const auto restored = box.dir() / "restored256.git";
    ASSERT_TRUE(git.init_bare(restored, "sha256"));
    ASSERT_TRUE(git.fetch_bundle(restored, box.dir() / "b.bundle", k_timeout));
    ASSERT_TRUE(git.set_refs(restored, *refs, std::string("refs/heads/main")));
    EXPECT_EQ(*git.local_refs(restored), *refs);
    EXPECT_TRUE(git.fsck(restored, k_timeout));
}

TEST(Git, LocalRefsPeelATagOfATagToTheCommit) {
    Sandbox box;
    auto upstream = box.make_upstream();
    box.git(upstream, {"tag", "-a", "v1.0-signed-off", "-m", "tag of a tag", "v1.0"});
    auto git = make_git();
    auto refs = git.local_refs(upstream);
    ASSERT_TRUE(refs);
    const auto& outer = refs->at("refs/tags/v1.0-signed-off");
    EXPECT_EQ(outer.oid, box.git(upstream, {"rev-parse", "refs/tags/v1.0-signed-off"}));
    EXPECT_EQ(outer.peeled, box.git(upstream, {"rev-parse", "main"}));
    // ls-remote reports the same map, so the two sources compare equal.
    auto remote = git.ls_remote({.url = upstream.string()}, k_timeout);
    ASSERT_TRUE(remote);
    EXPECT_EQ(remote->refs, *refs);
}

TEST(Git, IncrementalBundleWithPrerequisitesRestoresOnTopOfTheFull) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    auto collect = [](std::string& into) {
        return [&into](std::span<const std::byte> chunk) -> Status {
            into.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
            return {};
        };
    };
    const std::string main_oid = box.git(upstream, {"rev-parse", "main"});
    std::string full, incremental;
    ASSERT_TRUE(git.bundle_create(upstream, {"refs/heads/main"}, collect(full), k_timeout));
    ASSERT_TRUE(
        git.bundle_create(upstream, {"refs/heads/feature", "^" + main_oid}, collect(incremental), k_timeout));
    EXPECT_NE(incremental.find("\n-" + main_oid), std::string::npos) << "no prerequisite line";
    EXPECT_LT(incremental.size(), full.size());
    Sandbox::write(box.dir() / "full.bundle", full);
    Sandbox::write(box.dir() / "incr.bundle", incremental);
    auto heads = git.bundle_heads(box.dir() / "incr.bundle");
    ASSERT_TRUE(heads);
    EXPECT_EQ(names_of(*heads), std::vector<std::string>{"refs/heads/feature"});

    const auto restored = box.dir() / "chain.git";
    ASSERT_TRUE(git.init_bare(restored, "sha1"));
    // Without the full bundle first, the prerequisite is missing.
    EXPECT_FALSE(git.fetch_bundle(restored, box.dir() / "incr.bundle", k_timeout));
    ASSERT_TRUE(git.fetch_bundle(restored, box.dir() / "full.bundle", k_timeout));
    ASSERT_TRUE(git.fetch_bundle(restored, box.dir() / "incr.bundle", k_timeout));
    auto refs = git.local_refs(restored);
    ASSERT_TRUE(refs);
    EXPECT_EQ(refs->at("refs/heads/feature").oid, box.git(upstream, {"rev-parse", "feature"}));
    EXPECT_TRUE(git.fsck(restored, k_timeout));
}

TEST(Git, AddRefsLeavesOtherRefsAlone) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const auto repo = box.dir() / "add.git";
    box.git(box.dir(), {"clone", "--quiet", "--mirror", upstream.string(), repo.string()});
    auto before = git.local_refs(repo);
    ASSERT_TRUE(before);
    const std::string older = box.git(upstream, {"rev-parse", "main~1"});
    ASSERT_TRUE(
        git.add_refs(repo, {{"refs/snapshotter/tips/1", {older, ""}}, {"refs/heads/main", {older, ""}}}));
    ASSERT_TRUE(git.add_refs(repo, {}));
    auto after = git.local_refs(repo);
    ASSERT_TRUE(after);
    RefMap expected = *before;
    expected["refs/heads/main"] = {older, ""};
    expected["refs/snapshotter/tips/1"] = {older, ""};
    EXPECT_EQ(*after, expected);
    EXPECT_FALSE(git.add_refs(repo, {{"refs/heads/x", {std::string(40, '2'), ""}}}));
}

TEST(Git, ObjectTypes) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const std::string commit = box.git(upstream, {"rev-parse", "main"});
    const std::string tag = box.git(upstream, {"rev-parse", "refs/tags/v1.0"});
    const std::string tree = box.git(upstream, {"rev-parse", "main^{tree}"});
    const std::string blob = box.git(upstream, {"rev-parse", "main:README"});
    const std::string missing(40, '3');
    auto types = git.object_types(upstream, {commit, tag, tree, blob, missing});
    ASSERT_TRUE(types) << types.error().message;
    EXPECT_EQ(*types, (std::map<std::string, std::string>{
                          {commit, "commit"}, {tag, "tag"}, {tree, "tree"}, {blob, "blob"}}));
    auto none = git.object_types(upstream, {});
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}

TEST(Git, IsAncestor) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const std::string main_oid = box.git(upstream, {"rev-parse", "main"});
    const std::string first = box.git(upstream, {"rev-parse", "main~1"});
    const std::string feature = box.git(upstream, {"rev-parse", "feature"});
    EXPECT_EQ(git.is_ancestor(upstream, first, main_oid), true);
    EXPECT_EQ(git.is_ancestor(upstream, main_oid, feature), true);
    EXPECT_EQ(git.is_ancestor(upstream, feature, main_oid), false);
    EXPECT_EQ(git.is_ancestor(upstream, main_oid, main_oid), true);
    // Not commits: no fast-forward relation.
    EXPECT_EQ(git.is_ancestor(upstream, box.git(upstream, {"rev-parse", "main^{tree}"}), main_oid), false);
}

TEST(Git, BundleBoundaryTellsTheNewTipsAndTheOldParentsOfNewCommits) {
    Sandbox box;
    auto upstream = box.make_upstream();
    auto git = make_git();
    const std::string main_oid = box.git(upstream, {"rev-parse", "main"});
    const std::string first = box.git(upstream, {"rev-parse", "main~1"});
    const std::string feature = box.git(upstream, {"rev-parse", "feature"});
    const std::string annotated = box.git(upstream, {"rev-parse", "v1.0"});

    auto walk = git.bundle_boundary(upstream, {feature, first}, {main_oid}, k_timeout);
    ASSERT_TRUE(walk) << walk.error().message;
    EXPECT_TRUE(walk->any_new);
    EXPECT_EQ(walk->new_tips, std::set<std::string>{feature}); // `first` is old: main reaches it
    EXPECT_EQ(walk->prerequisites, std::vector<std::string>{main_oid});

    walk = git.bundle_boundary(upstream, {main_oid}, {feature}, k_timeout);
    ASSERT_TRUE(walk);
    EXPECT_FALSE(walk->any_new);
    EXPECT_TRUE(walk->new_tips.empty());
    EXPECT_TRUE(walk->prerequisites.empty());

    // No old commits: the whole history is new, and no boundary.
    walk = git.bundle_boundary(upstream, {main_oid}, {}, k_timeout);
    ASSERT_TRUE(walk);
    EXPECT_TRUE(walk->any_new);
    EXPECT_EQ(walk->new_tips, std::set<std::string>{main_oid});
    EXPECT_TRUE(walk->prerequisites.empty());

    // A tag is walked as its commit; the tag itself is never a new tip.
    walk = git.bundle_boundary(upstream, {annotated}, {first}, k_timeout);
    ASSERT_TRUE(walk);
    EXPECT_TRUE(walk->any_new);
    EXPECT_TRUE(walk->new_tips.empty());
    EXPECT_EQ(walk->prerequisites, std::vector<std::string>{first});

    walk = git.bundle_boundary(upstream, {}, {main_oid}, k_timeout);
    ASSERT_TRUE(walk);
    EXPECT_FALSE(walk->any_new);

    auto bad = git.bundle_boundary(upstream, {main_oid}, {std::string(40, '4')}, k_timeout);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::Git);
}

TEST(Shallow, TheBoundaryRoundTripsSortedAndAnEmptyOneWritesNoFile) {
    auto scratch = TempDir::create("test-shallow");
    ASSERT_TRUE(scratch);
    const auto repo = scratch->path();
    ASSERT_TRUE(write_shallow(repo, {}));
    EXPECT_FALSE(std::filesystem::exists(repo / "shallow"));
    auto none = read_shallow(repo);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    const std::string a(40, 'a'), b(64, 'b');
    ASSERT_TRUE(write_shallow(repo, {b, a}));
    auto roots = read_shallow(repo);
    ASSERT_TRUE(roots) << roots.error().message;
    EXPECT_EQ(*roots, (std::vector<std::string>{a, b}));
    std::ofstream(repo / "shallow") << a << "\nnot-an-oid\n";
    auto bad = read_shallow(repo);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::Git);
}
