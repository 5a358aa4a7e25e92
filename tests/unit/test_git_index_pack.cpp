// PackIndexer against bundles made by the real git: a good pack is indexed,
// a damaged one and a thin one without its bases are rejected.
#include "git_sandbox.hpp"
#include "snapshotter/git/index_pack.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace snapshotter::test_support;

namespace {

std::string read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// Feed `bundle` to a new indexer in `repo` in chunks of `chunk` bytes.
Result<std::string> index_bundle(const Git& git, const fs::path& repo, std::string_view bundle,
                                 std::size_t chunk = 7) {
    auto indexer = PackIndexer::start(git, repo, k_timeout);
    if (!indexer)
        return fail(indexer.error());
    for (std::size_t at = 0; at < bundle.size(); at += chunk)
        if (auto s = indexer->feed(bytes(bundle.substr(at, chunk))); !s)
            return fail(s.error());
    return indexer->finish();
}

// Replace the SHA-1 trailer of the pack that starts at `pack_at` so that
// only git's per-object checks can notice damage inside it.
void fix_trailer(std::string& bundle, std::size_t pack_at) {
    unsigned char digest[20];
    unsigned int size = 0;
    EVP_Digest(bundle.data() + pack_at, bundle.size() - pack_at - 20, digest, &size, EVP_sha1(), nullptr);
    bundle.replace(bundle.size() - 20, 20, reinterpret_cast<const char*>(digest), 20);
}

class PackIndexerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        upstream = box.make_upstream();
        target = box.dir() / "target.git";
        ASSERT_TRUE(git.init_bare(target, "sha1"));
    }
    // A bundle of `revs` of the upstream.
    std::string bundle(std::vector<std::string> revs) {
        auto path = box.dir() / "b.bundle";
        revs.insert(revs.begin(), {"bundle", "create", "--quiet", path.string()});
        box.git(upstream, revs);
        return read_all(path);
    }

    Sandbox box;
    Git git = make_git();
    fs::path upstream;
    fs::path target;
};

} // namespace

TEST_F(PackIndexerTest, IndexesAFullBundleFedInSmallChunks) {
    auto full = bundle({"--all"});
    auto checksum = index_bundle(git, target, full);
    ASSERT_TRUE(checksum) << checksum.error().message;
    EXPECT_EQ(checksum->size(), 40u);
    // The objects are now in the repository: every tip resolves.
    auto types = git.object_types(
        target, {box.git(upstream, {"rev-parse", "main"}), box.git(upstream, {"rev-parse", "feature"})});
    ASSERT_TRUE(types);
    EXPECT_EQ(types->size(), 2u);
}

TEST_F(PackIndexerTest, CompletesAThinPackFromObjectsAlreadyPresent) {
    ASSERT_TRUE(index_bundle(git, target, bundle({"main"})));
    auto thin = bundle({"main..feature"});
    ASSERT_NE(thin.find("\n-"), std::string::npos) << "the bundle should list a prerequisite";
    auto checksum = index_bundle(git, target, thin, 4096);
    EXPECT_TRUE(checksum) << checksum.error().message;
}

TEST_F(PackIndexerTest, RejectsAThinPackWhoseBasesAreMissing) {
    // Deltas against objects outside the pack: make a change git stores as a delta.
    auto big = std::string(20000, 'x');
    for (int i = 0; i < 3; ++i) {
        Sandbox::write(upstream / "big.txt", big + std::to_string(i));
        box.git(upstream, {"add", "big.txt"});
        box.git(upstream, {"commit", "--quiet", "-m", "big " + std::to_string(i)});
    }
    auto thin = bundle({"main~1..main"});
    auto checksum = index_bundle(git, target, thin);
    ASSERT_FALSE(checksum);
    EXPECT_EQ(checksum.error().kind, ErrorKind::Integrity);
    EXPECT_NE(checksum.error().message.find("index-pack"), std::string::npos) << checksum.error().message;
}

TEST_F(PackIndexerTest, RejectsDamageThatTheTrailerDoesNotCatch) {
    auto full = bundle({"--all"});
    auto pack_at = full.find("\n\nPACK") + 2;
    ASSERT_NE(pack_at, std::string::npos + 2);
    // Flip a byte of compressed object data well inside the pack, then make the trailer match.
    auto victim = pack_at + (full.size() - pack_at) / 2;
    full[victim] = static_cast<char>(full[victim] ^ 0x5a);
    fix_trailer(full, pack_at);
    auto checksum = index_bundle(git, target, full);
    ASSERT_FALSE(checksum);
    EXPECT_EQ(checksum.error().kind, ErrorKind::Integrity);
}

TEST_F(PackIndexerTest, AHeaderWithoutAPackIsAnIntegrityError) {
    auto full = bundle({"--all"});
    auto header = full.substr(0, full.find("\n\n") + 2);
    auto checksum = index_bundle(git, target, header);
    ASSERT_FALSE(checksum);
    EXPECT_EQ(checksum.error().kind, ErrorKind::Integrity);
}

TEST_F(PackIndexerTest, CancelStopsIndexPackWithoutWaiting) {
    auto indexer = PackIndexer::start(git, target, k_timeout);
    ASSERT_TRUE(indexer);
    auto full = bundle({"--all"});
    ASSERT_TRUE(indexer->feed(bytes(full.substr(0, full.size() / 2))));
    indexer->cancel();
    indexer->cancel();
    auto after = indexer->finish();
    EXPECT_FALSE(after);
}
