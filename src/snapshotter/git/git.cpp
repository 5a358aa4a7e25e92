#include "snapshotter/git/git.hpp"

#include "snapshotter/git/cat_file.hpp"
#include "snapshotter/git/environment.hpp"
#include "snapshotter/git/failure.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fmt/format.h>
#include <fstream>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::git {
namespace {

// Config every git child reads as its "global" config: nothing from the
// machine or the user, no hooks, no background work. It holds no secret.
// A fetch keeps what it receives as one pack however few objects it brings
// (fetch.unpackLimit: git writes fewer than 100 objects loose by default), so
// a kept mirror gains a pack a night, not a few dozen loose files, and its
// packs stay bounded by GitApi::repack_geometric (git/object_store.hpp).
constexpr std::string_view k_private_config = R"([core]
	hooksPath = /dev/null
	fsmonitor = false
	askPass =
[safe]
	directory = *
[gc]
	auto = 0
[maintenance]
	auto = false
[protocol]
	version = 2
[protocol "ext"]
	allow = never
[protocol "fd"]
	allow = never
[http]
	lowSpeedLimit = 1000
	lowSpeedTime = 120
[fetch]
	writeCommitGraph = false
	unpackLimit = 1
[credential]
	helper =
	helper = "!f() { test \"$1\" = get || exit 0; test -n \"$SNAPSHOTTER_GIT_CREDENTIAL_FILE\" || exit 0; p=; h=; while IFS= read -r l && test -n \"$l\"; do case $l in protocol=*) p=${l#protocol=} ;; host=*) h=${l#host=} ;; esac; done; test \"$p\" = \"$SNAPSHOTTER_GIT_CREDENTIAL_PROTOCOL\" && test \"$h\" = \"$SNAPSHOTTER_GIT_CREDENTIAL_HOST\" || exit 0; cat -- \"$SNAPSHOTTER_GIT_CREDENTIAL_FILE\"; }; f"
[init]
	defaultBranch = main
[advice]
	detachedHead = false
)";

std::string trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n'))
        s.remove_prefix(1);
    return std::string(s);
}

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        out.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos)
            break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::string allowed_protocols(const TransportPolicy& policy) {
    std::string out = "https:ssh:git";
    if (policy.allow_file)
        out += ":file";
    if (policy.allow_http)
        out += ":http";
    return out;
}

// Parse "<oid> <refname>" lines (tab or space separated), folding
// "<ref>^{}" lines into the peeled oid of <ref>.
RefMap parse_ref_lines(std::string_view text) {
    RefMap refs;
    for (auto line : split_lines(text)) {
        auto sep = line.find_first_of("\t ");
        if (sep == std::string_view::npos || line.starts_with("ref: "))
            continue;
        std::string oid(line.substr(0, sep));
        std::string name = trim(line.substr(sep + 1));
        if (name.ends_with("^{}")) {
            refs[name.substr(0, name.size() - 3)].peeled = oid;
        } else {
            refs[name].oid = oid;
        }
    }
    return refs;
}

} // namespace

bool ref_matches(std::string_view pattern, std::string_view refname) {
    if (pattern.ends_with('*'))
        return refname.starts_with(pattern.substr(0, pattern.size() - 1));
    return pattern == refname;
}

RefMap select_refs(const RefMap& refs, const std::vector<std::string>& patterns) {
    RefMap out;
    for (const auto& [name, target] : refs)
        for (const auto& p : patterns)
            if (ref_matches(p, name)) {
                out.emplace(name, target);
                break;
            }
    return out;
}

std::string object_format_of(std::string_view oid) {
    if (oid.size() == 40)
        return "sha1";
    if (oid.size() == 64)
        return "sha256";
    return {};
}

bool is_object_id(std::string_view text) {
    return !object_format_of(text).empty() &&
           text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<Git> Git::create() {
    auto home = TempDir::create("git-home");
    if (!home)
        return fail(home.error());
    if (auto s = write_file_atomic(home->path() / "gitconfig", k_private_config, Overwrite::yes,
                                   Durability::atomic_only);
        !s)
        return fail(s.error());
    Git git(std::move(*home));
    auto out = git.run_checked({"version"}, {.timeout = std::chrono::seconds{30}}, "git version");
    if (!out)
        return fail(out.error());
    std::string text = trim(out->out);
    git.m_version = text.starts_with("git version ") ? text.substr(12) : text;
    return git;
}

std::vector<std::string> Git::environment(const Invocation& inv, const fs::path& credential_file) const {
    auto env = isolated_environment(Home::private_home, m_home.path());
    env.push_back("GIT_SSH_COMMAND=ssh -o BatchMode=yes");
    TransportPolicy policy = inv.remote != nullptr ? inv.remote->policy : TransportPolicy{false, true};
    env.push_back("GIT_ALLOW_PROTOCOL=" + allowed_protocols(policy));
    if (!credential_file.empty()) {
        env.push_back("SNAPSHOTTER_GIT_CREDENTIAL_FILE=" + credential_file.string());
        // The helper answers only for the remote's own protocol and host[:port],
        // as git describes them (from the URL as written).
        if (auto url = parse_git_url(inv.remote->url, inv.remote->policy)) {
            env.push_back(
                fmt::format("SNAPSHOTTER_GIT_CREDENTIAL_PROTOCOL={}", transport_name(url->transport)));
            env.push_back(fmt::format("SNAPSHOTTER_GIT_CREDENTIAL_HOST={}",
                                      url->port.empty() ? url->host : url->host + ":" + url->port));
        }
    }
    if (inv.trace_packets)
        env.push_back("GIT_TRACE_PACKET=2");
    return env;
}

namespace {

// GIT_SSH_COMMAND for `settings`: the key and known_hosts written to a
// private directory (kept in `dir` while git runs), every argument quoted
// for the shell git hands the command to.
Result<std::string> ssh_command(const SshSettings& settings, std::optional<TempDir>& dir) {
    auto made = TempDir::create("ssh");
    if (!made)
        return fail(made.error());
    dir.emplace(std::move(*made));
    auto args = ssh_arguments(settings, dir->path());
    if (!args)
        return fail(args.error());
    std::string command = "ssh -o BatchMode=yes";
    for (const auto& arg : *args)
        command += " " + shell_single_quote(arg);
    return command;
}

} // namespace

namespace {

// The URL git names in "warning: redirecting to <url>" (printed when a
// server's redirect moved the remote), if `err` has one.
std::optional<std::string_view> redirect_in_stderr(std::string_view err) {
    constexpr std::string_view k_marker = "redirecting to ";
    auto at = err.find(k_marker);
    if (at == std::string_view::npos)
        return std::nullopt;
    std::string_view url = err.substr(at + k_marker.size());
    return url.substr(0, url.find_first_of(" \r\n"));
}

} // namespace

Result<ProcessResult> Git::run(std::vector<std::string> args, const Invocation& inv) const {
    args.insert(args.begin(), "git");
    // http(s) redirects as options.http.follow_redirects says; which origin
    // gets credentials is the helper's business (see k_gitconfig).
    if (inv.remote != nullptr)
        args.insert(args.begin() + 1,
                    {"-c", inv.remote->redirects == RedirectPolicy::never ? "http.followRedirects=false"
                                                                          : "http.followRedirects=initial"});
    // The password reaches the credential helper through a 0600 file in a
    // private directory that lives as long as this call (removed on failure
    // too): never through argv or the environment, which /proc shows.
    std::optional<TempDir> private_dir;
    fs::path credential_file;
    if (inv.remote != nullptr && !inv.remote->password.empty()) {
        const std::string& username = inv.remote->username;
        const std::string& password = inv.remote->password;
        if (username.find_first_of(std::string_view("\n\0", 2)) != std::string::npos ||
            password.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
            return fail(
                Error::payload("credentials: the username and token must not contain a newline or NUL"));
        auto dir = TempDir::create("git-credential");
        if (!dir)
            return fail(dir.error());
        private_dir.emplace(std::move(*dir));
        credential_file = private_dir->path() / "credential";
        if (auto s = write_private_file(credential_file,
                                        fmt::format("username={}\npassword={}\n", username, password));
            !s)
            return fail(s.error());
    }
    ProcessOptions options;
    options.cwd = inv.cwd;
    options.env = environment(inv, credential_file);
    std::optional<TempDir> ssh_dir; // removed when git is done
    if (inv.remote != nullptr) {
        auto url = parse_git_url(inv.remote->url, inv.remote->policy);
        if (url && url->transport == Transport::ssh) {
            if (!inv.remote->ssh.private_key.empty())
                register_secret(inv.remote->ssh.private_key);
            auto command = ssh_command(inv.remote->ssh, ssh_dir);
            if (!command)
                return fail(command.error());
            for (auto& entry : options.env)
                if (entry.starts_with("GIT_SSH_COMMAND="))
                    entry = "GIT_SSH_COMMAND=" + *command;
        }
    }
    options.timeout = inv.timeout;
    options.stdin_data = inv.stdin_data;
    options.on_stdout = inv.on_stdout;
    spdlog::debug("git {}", redact(fmt::format("{}", fmt::join(args.begin() + 1, args.end(), " "))));
    auto result = run_process(args, options);
    // git followed a redirect to another origin (with no credential: the
    // helper answers only for the remote's origin); same_origin refuses it.
    if (result && inv.remote != nullptr && inv.remote->redirects == RedirectPolicy::same_origin)
        if (auto target = redirect_in_stderr(result->err)) {
            auto home = origin_of(inv.remote->url);
            if (home && origin_of(*target) != home)
                return fail(Error::git(fmt::format(
                    "refused a redirect to another origin ({}): credentials and requests stay with "
                    "{}://{}:{} "
                    "(options.http.follow_redirects \"any_without_credentials\" follows it, sending no "
                    "credential)",
                    redact(redact_url(std::string(*target).substr(0, target->find('?')))), home->scheme,
                    home->host, home->port)));
        }
    return result;
}

Result<Child> Git::spawn(const std::filesystem::path& repo, std::vector<std::string> args,
                         std::chrono::milliseconds timeout) const {
    args.insert(args.begin(), "git");
    spdlog::debug("git {}", redact(fmt::format("{}", fmt::join(args.begin() + 1, args.end(), " "))));
    return Child::spawn(args, {.cwd = repo, .env = environment({}, {}), .timeout = timeout});
}

Result<ProcessResult> Git::run_checked(std::vector<std::string> args, const Invocation& inv,
                                       std::string_view what) const {
    auto result = run(std::move(args), inv);
    if (!result) {
        if (result.error().kind == ErrorKind::Timeout || result.error().kind == ErrorKind::Internal)
            return fail(Error{result.error().kind == ErrorKind::Timeout ? ErrorKind::Timeout : ErrorKind::Git,
                              redact(fmt::format("{}: {}", what, result.error().message)),
                              result.error().cause});
        return fail(result.error());
    }
    if (!result->ok()) {
        // git's advice after a failed connection hides the reason (ssh's
        // "Host key verification failed.", say) from a three-line tail.
        std::string err;
        for (auto line : split_lines(result->err))
            if (!line.starts_with("Please make sure you have the correct access rights") &&
                !line.starts_with("and the repository exists."))
                err.append(line).push_back('\n');
        std::string detail = tail_lines(redact(err));
        if (detail.empty())
            detail = result->signal != 0 ? fmt::format("killed by signal {}", result->signal)
                                         : fmt::format("exit code {}", result->exit_code);
        // The one place a git command's failure is judged (git/failure.hpp).
        return fail(Error::git(redact(fmt::format("{}: {}", what, detail)), classify_git_stderr(detail)));
    }
    return result;
}

Result<RemoteState> Git::ls_remote(const Remote& remote, std::chrono::milliseconds timeout) const {
    auto out =
        run_checked({"ls-remote", "--symref", "--", remote.url}, {.timeout = timeout, .remote = &remote},
                    fmt::format("ls-remote {}", redact_url(remote.url)));
    if (!out)
        return fail(out.error());
    RemoteState state;
    for (auto line : split_lines(out->out)) {
        // "ref: refs/heads/main\tHEAD"
        if (line.starts_with("ref: ") && line.ends_with("\tHEAD")) {
            state.head = std::string(line.substr(5, line.size() - 5 - 5));
        }
    }
    state.refs = parse_ref_lines(out->out);
    if (auto it = state.refs.find("HEAD"); it != state.refs.end() && !it->second.oid.empty())
        state.head_oid = it->second.oid;
    state.refs.erase("HEAD");
    for (auto it = state.refs.begin(); it != state.refs.end();)
        it = it->first.starts_with("refs/") ? std::next(it) : state.refs.erase(it);
    return state;
}

Result<std::pair<std::string, std::optional<std::string>>>
Git::probe_empty_remote(const Remote& remote, std::chrono::milliseconds timeout) const {
    std::string what = fmt::format("probe {}", redact_url(remote.url));
    // The object format is only in the capability advertisement.
    auto traced = run_checked({"ls-remote", "--", remote.url},
                              {.timeout = timeout, .remote = &remote, .trace_packets = true}, what);
    if (!traced)
        return fail(traced.error());
    std::string format = "sha1";
    if (traced->err.find("object-format=sha256") != std::string::npos)
        format = "sha256";
    // A v0 server cannot say where an unborn HEAD points: a clone would only
    // show git's own default branch, which the server never named.
    if (traced->err.find("ls-remote< version 2") == std::string::npos)
        return std::pair{format, std::optional<std::string>{}};
    // HEAD of an empty repository is only seen by clone (protocol v2 "unborn").
    auto scratch = TempDir::create("probe");
    if (!scratch)
        return fail(scratch.error());
    auto clone_dir = scratch->path() / "repo.git";
    auto cloned = run_checked({"clone", "--bare", "--quiet", "--", remote.url, clone_dir.string()},
                              {.timeout = timeout, .remote = &remote}, what);
    if (!cloned)
        return fail(cloned.error());
    std::optional<std::string> head;
    auto sym = run({"symbolic-ref", "-q", "HEAD"}, {.cwd = clone_dir});
    if (sym && sym->ok() && !trim(sym->out).empty())
        head = trim(sym->out);
    return std::pair{format, head};
}

namespace {

// Delete the `*.lock` files git leaves in `repo` (refs/, packed-refs.lock,
// config.lock, HEAD.lock, ...) when it is killed mid-update; every later git
// command would refuse to update the locked file. Also the `.keep` files a
// killed fetch leaves beside the pack it received ("fetch-pack <pid> on
// <host>"; git removes them once the refs are updated): a kept pack is never
// rolled up by repack_geometric(). Only safe while no other process can be
// updating `repo`.
void remove_stale_locks(const std::filesystem::path& repo) {
    std::error_code ec;
    std::vector<std::filesystem::path> stale;
    for (const auto& entry : std::filesystem::directory_iterator(repo, ec))
        if (entry.path().extension() == ".lock" && entry.is_regular_file(ec))
            stale.push_back(entry.path());
    for (const auto& entry : std::filesystem::directory_iterator(repo / "objects" / "pack", ec))
        if (entry.path().extension() == ".keep" && entry.is_regular_file(ec))
            if (auto text = read_file(entry.path(), 4096); text && text->starts_with("fetch-pack "))
                stale.push_back(entry.path());
    for (const char* dir : {"refs", "logs"}) {
        auto it = std::filesystem::recursive_directory_iterator(repo / dir, ec);
        for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->path().extension() == ".lock" && it->is_regular_file(ec))
                stale.push_back(it->path());
    }
    for (const auto& path : stale) {
        spdlog::warn("removing {}, left by a git process that was killed", path.string());
        std::filesystem::remove(path, ec);
    }
}

// The loose ref files under `repo`/refs, counting stopped at `limit`.
std::size_t loose_ref_count(const std::filesystem::path& repo, std::size_t limit) {
    std::size_t count = 0;
    std::error_code ec;
    auto it = std::filesystem::recursive_directory_iterator(repo / "refs", ec);
    for (; !ec && count < limit && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->path().extension() != ".lock" && it->is_regular_file(ec))
            ++count;
    return count;
}

// The object format of the bare repository `repo` as its config file says
// (extensions.objectformat, "sha1" when absent), read without starting git;
// empty when `repo` is not a repository git would open (no HEAD, objects/,
// refs/ or config), which is then made afresh.
std::string mirror_object_format(const std::filesystem::path& repo) {
    std::error_code ec;
    if (!fs::is_regular_file(repo / "HEAD", ec) || !fs::is_directory(repo / "objects", ec) ||
        !fs::is_directory(repo / "refs", ec))
        return {};
    auto config = read_file(repo / "config", std::size_t{1} << 20);
    if (!config)
        return {};
    auto lower = [](std::string_view text) {
        std::string out(text);
        std::transform(out.begin(), out.end(), out.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return out;
    };
    std::string format = "sha1";
    bool in_extensions = false;
    for (auto raw : split_lines(*config)) {
        const std::string line = lower(trim(raw));
        if (line.starts_with("[")) {
            in_extensions = line == "[extensions]";
            continue;
        }
        if (!in_extensions || !line.starts_with("objectformat"))
            continue;
        auto eq = line.find('=');
        if (eq == std::string::npos || !trim(line.substr(12, eq - 12)).empty())
            continue;
        format = trim(line.substr(eq + 1));
    }
    return format;
}

// The tip of every ref of the files-backend repository `repo`: packed-refs
// first, then the loose files under refs/, which win. nullopt when anything
// is not as git writes it (a symbolic ref, a malformed line, an unreadable
// file, more than k_max_ref_files files): the caller asks git instead.
std::optional<std::map<std::string, std::string>> ref_tips_in_files(const std::filesystem::path& repo) {
    constexpr std::size_t k_max_ref_files = 1'000'000;
    std::map<std::string, std::string> tips;
    std::error_code ec;
    if (fs::exists(repo / "packed-refs", ec)) {
        auto packed = read_file(repo / "packed-refs", std::size_t{1} << 30);
        if (!packed)
            return std::nullopt;
        for (auto line : split_lines(*packed)) {
            if (line.empty() || line.starts_with('#') || line.starts_with('^'))
                continue;
            auto space = line.find(' ');
            if (space == std::string_view::npos || !is_object_id(line.substr(0, space)) ||
                !line.substr(space + 1).starts_with("refs/"))
                return std::nullopt;
            tips[std::string(line.substr(space + 1))] = std::string(line.substr(0, space));
        }
    }
    std::size_t files = 0;
    auto it = fs::recursive_directory_iterator(repo / "refs", ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec))
            continue;
        if (++files > k_max_ref_files || !it->is_regular_file(ec))
            return std::nullopt;
        auto content = read_file(it->path(), 256);
        if (!content)
            return std::nullopt;
        const std::string oid = trim(*content);
        if (!is_object_id(oid))
            return std::nullopt; // "ref: ..." (symbolic) or not a ref at all
        tips["refs/" + fs::relative(it->path(), repo / "refs", ec).generic_string()] = oid;
    }
    if (ec)
        return std::nullopt;
    return tips;
}

} // namespace

Status Git::update_mirror(const std::filesystem::path& mirror, const std::string& object_format,
                          const Remote& remote, const std::vector<std::string>& patterns,
                          std::chrono::milliseconds timeout, Shallow shallow) const {
    auto refs = update_mirror_refs(mirror, object_format, remote, patterns, timeout, shallow);
    if (!refs)
        return fail(refs.error());
    return {};
}

Result<RefMap> Git::update_mirror_refs(const std::filesystem::path& mirror, const std::string& object_format,
                                       const Remote& remote, const std::vector<std::string>& patterns,
                                       std::chrono::milliseconds timeout, Shallow shallow) const {
    std::error_code ec;
    bool usable = fs::exists(mirror / "HEAD", ec);
    if (usable) {
        usable = mirror_object_format(mirror) == object_format;
        if (!usable)
            spdlog::warn("mirror {} is unusable or has another object format; recreating it",
                         mirror.string());
    }
    if (!usable) {
        fs::remove_all(mirror, ec);
        if (auto s = init_bare(mirror, object_format); !s)
            return fail(s.error());
    }
    remove_stale_locks(mirror);
    // Refspecs on stdin: an exact list of thousands of refs fits no command line.
    std::string refspecs;
    for (const auto& p : patterns)
        refspecs += fmt::format("+{}:{}\n", p, p);
    if (auto s = fetch_refspecs(mirror, remote, refspecs, true, timeout, shallow, CommitGraph::write); !s)
        return fail(s.error());
    if (auto s = pack_loose_refs(mirror, timeout); !s)
        return fail(s.error());
    // Refs that no longer match any pattern (the payload changed) must go too.
    auto refs = local_refs(mirror);
    if (!refs)
        return fail(refs.error());
    auto keep = patterns;
    keep.emplace_back("refs/snapshotter/*");
    auto wanted = select_refs(*refs, keep);
    if (wanted.size() != refs->size()) {
        if (auto s = set_refs(mirror, wanted, std::nullopt); !s)
            return fail(s.error());
        return wanted;
    }
    return std::move(*refs);
}

Status Git::fetch_refspecs(const std::filesystem::path& mirror, const Remote& remote,
                           const std::string& refspecs, bool prune, std::chrono::milliseconds timeout,
                           Shallow shallow, CommitGraph graph) const {
    std::vector<std::string> args = {"fetch",   "--no-tags",    "--no-write-fetch-head",
                                     "--quiet", "--no-auto-gc", "--stdin",
                                     "--",      remote.url};
    if (prune)
        args.insert(args.begin() + 1, "--prune");
    if (shallow == Shallow::accept)
        args.insert(args.begin() + 1, "--update-shallow");
    // A layer on top of the mirror's commit-graph for what this fetch brings
    // (k_commit_graph_refs); the private config leaves it off for every other fetch.
    if (graph == CommitGraph::write)
        args.insert(args.begin(), {"-c", "fetch.writeCommitGraph=true"});
    auto out = run_checked(std::move(args),
                           {.cwd = mirror, .timeout = timeout, .remote = &remote, .stdin_data = refspecs},
                           fmt::format("fetch {}", redact_url(remote.url)));
    // Over protocol v0 smart HTTP, git fetches a shallow upstream's pack and
    // then finds commits whose parents it lacks.
    if (!out && out.error().message.find("did not send all necessary objects") != std::string::npos)
        return fail(Error::git(fmt::format("fetch {}: {} or is missing objects ({})", redact_url(remote.url),
                                           k_shallow_upstream, out.error().message),
                               out.error().cause));
    if (!out)
        return fail(out.error());
    // git fetches from a shallow repository, then refuses the refs whose
    // history it lacks with a warning, and exits 0.
    for (auto line : split_lines(out->err))
        if (line.find("shallow roots are not allowed") != std::string_view::npos)
            return fail(Error::git(redact(fmt::format("fetch {}: {} (git: {})", redact_url(remote.url),
                                                      k_shallow_upstream, trim(line)))));
    return {};
}

Status Git::pack_loose_refs(const std::filesystem::path& mirror, std::chrono::milliseconds timeout) const {
    // git fetch writes one loose file per ref it creates or moves (a first
    // fetch of 100,000 refs makes 100,000): pack them, so every later command
    // reads one packed-refs file, as in a `git clone --mirror`.
    if (loose_ref_count(mirror, k_loose_refs_to_pack + 1) <= k_loose_refs_to_pack)
        return {};
    auto packed =
        run_checked({"pack-refs", "--all", "--prune"}, {.cwd = mirror, .timeout = timeout}, "pack-refs");
    if (!packed)
        return fail(packed.error());
    return {};
}

Result<RefMap> Git::update_mirror_refs_to(const std::filesystem::path& mirror,
                                          const std::string& object_format, const Remote& remote,
                                          const std::vector<std::string>& patterns, const RefMap& listed,
                                          std::chrono::milliseconds timeout, Shallow shallow,
                                          FetchBy by) const {
    auto by_patterns = [&] {
        return update_mirror_refs(mirror, object_format, remote, patterns, timeout, shallow);
    };
    std::error_code ec;
    if (!fs::exists(mirror / "HEAD", ec))
        return by_patterns();
    if (mirror_object_format(mirror) != object_format)
        return by_patterns();
    remove_stale_locks(mirror);
    // The tips before, read from the ref files (no git child): they only
    // choose what to fetch and delete; the refs after come from git itself
    // and are what the exactness check compares with the listing.
    auto before = ref_tips_in_files(mirror);
    if (!before) {
        auto listed_by_git = local_refs(mirror);
        if (!listed_by_git)
            return by_patterns();
        before.emplace();
        for (const auto& [name, target] : *listed_by_git)
            (*before)[name] = target.oid;
    }
    // The listed refs the mirror lacks or holds at another tip, fetched by
    // name and, when asked, by their listed object ids.
    std::string by_name, by_oid;
    std::size_t differing = 0;
    for (const auto& [name, target] : listed) {
        if (!name.starts_with("refs/"))
            return by_patterns();
        auto held = before->find(name);
        if (held == before->end() || held->second != target.oid) {
            by_name += fmt::format("+{}:{}\n", name, name);
            if (by == FetchBy::object_id) {
                if (object_format_of(target.oid) != object_format || !is_object_id(target.oid))
                    return fail(Error::git(fmt::format("fetch {}: {} is listed at a value that is not a "
                                                       "{} object id",
                                                       redact_url(remote.url), name, object_format),
                                           Cause::protocol));
                by_oid += fmt::format("+{}:{}\n", target.oid, name);
            }
            if (++differing > k_exact_fetch_refs)
                return by_patterns();
        }
    }
    // Deletions first (refs/heads/a must go before refs/heads/a/b can come).
    std::string deletions;
    for (const auto& [name, target] : *before)
        if (!name.starts_with("refs/snapshotter/") && !listed.contains(name))
            deletions += fmt::format("delete {}\n", name);
    if (!deletions.empty())
        if (auto out = run_checked({"update-ref", "--stdin"}, {.cwd = mirror, .stdin_data = deletions},
                                   "update-ref");
            !out)
            return fail(out.error());
    if (!by_name.empty()) {
        const auto graph = listed.size() >= k_commit_graph_refs ? CommitGraph::write : CommitGraph::skip;
        auto fetched = fetch_refspecs(mirror, remote, by == FetchBy::object_id ? by_oid : by_name, false,
                                      timeout, shallow, graph);
        // A server may refuse a want it did not advertise, or have lost the
        // tip since the listing: by name, git fetches what the server holds
        // now (the exactness check then tells whether that is what was listed).
        // Not after a refusal (credentials, a missing repository) or a
        // transient failure, which a second fetch would only repeat.
        if (!fetched && by == FetchBy::object_id && fetched.error().kind == ErrorKind::Git &&
            fetched.error().cause != Cause::refused && !is_transient(fetched.error().cause)) {
            spdlog::info("fetch {} by object id failed ({}); fetching by name", redact_url(remote.url),
                         fetched.error().message);
            fetched = fetch_refspecs(mirror, remote, by_name, false, timeout, shallow, graph);
        }
        if (!fetched)
            return fail(fetched.error());
        if (auto s = pack_loose_refs(mirror, timeout); !s)
            return fail(s.error());
    }
    return local_refs(mirror);
}

Status Git::repack_geometric(const std::filesystem::path& repo, std::chrono::milliseconds timeout) const {
    // -n: no update-server-info (nothing serves the mirror over dumb HTTP).
    auto out = run_checked({"repack", "-d", "-q", "-n", "--geometric=2"}, {.cwd = repo, .timeout = timeout},
                           "repack");
    if (!out)
        return fail(out.error());
    return {};
}

Result<std::string> Git::fetch_head(const std::filesystem::path& mirror, const Remote& remote,
                                    std::chrono::milliseconds timeout, Shallow shallow) const {
    std::vector<std::string> args = {"fetch", "--no-tags", "--no-write-fetch-head", "--quiet",
                                     "--no-auto-gc"};
    if (shallow == Shallow::accept)
        args.emplace_back("--update-shallow");
    args.insert(args.end(), {"--", remote.url, fmt::format("+HEAD:{}", k_head_ref)});
    auto out = run_checked(std::move(args), {.cwd = mirror, .timeout = timeout, .remote = &remote},
                           fmt::format("fetch HEAD of {}", redact_url(remote.url)));
    if (!out)
        return fail(out.error());
    auto refs = local_refs(mirror);
    if (!refs)
        return fail(refs.error());
    auto it = refs->find(std::string(k_head_ref));
    if (it == refs->end())
        return fail(Error::git(fmt::format("fetch HEAD of {}: git stored nothing", redact_url(remote.url))));
    return it->second.oid;
}

Result<std::vector<std::string>> read_shallow(const std::filesystem::path& repo) {
    std::vector<std::string> oids;
    std::ifstream in(repo / "shallow");
    if (!in)
        return oids;
    for (std::string line; std::getline(in, line);) {
        if (line.empty())
            continue;
        if (!is_object_id(line))
            return fail(Error::git(
                fmt::format("{}/shallow: not an object id: \"{}\"", repo.string(), line.substr(0, 80))));
        oids.push_back(line);
    }
    std::sort(oids.begin(), oids.end());
    oids.erase(std::unique(oids.begin(), oids.end()), oids.end());
    return oids;
}

Status write_shallow(const std::filesystem::path& repo, const std::vector<std::string>& oids) {
    if (oids.empty())
        return {};
    std::string text;
    for (const auto& oid : oids)
        text += oid + "\n";
    std::ofstream out(repo / "shallow", std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out)
        return fail(Error::internal(fmt::format("cannot write {}/shallow", repo.string())));
    return {};
}

Result<RefMap> Git::local_refs(const std::filesystem::path& repo) const {
    // show-ref -d peels annotated tags fully ("^{}" lines), exactly as
    // ls-remote does, so both sources of a ref map compare equal.
    auto out = run({"show-ref", "-d"}, {.cwd = repo});
    if (!out)
        return fail(out.error());
    if (out->exit_code == 1 && out->out.empty())
        return RefMap{};
    if (!out->ok())
        return fail(git_failure("show-ref", out->err));
    return parse_ref_lines(out->out);
}

Status Git::bundle_create(const std::filesystem::path& repo, const std::vector<std::string>& revs,
                          const OutputSink& sink, std::chrono::milliseconds timeout) const {
    std::string input;
    for (const auto& r : revs)
        input += r + "\n";
    auto out = run_checked({"bundle", "create", "--quiet", "-", "--stdin"},
                           {.cwd = repo, .timeout = timeout, .stdin_data = input, .on_stdout = sink},
                           "bundle create");
    if (!out)
        return fail(out.error());
    return {};
}

Result<RefMap> Git::bundle_heads(const std::filesystem::path& bundle) const {
    auto out = run_checked({"bundle", "list-heads", bundle.string()}, {}, "bundle list-heads");
    if (!out)
        return fail(out.error());
    return parse_ref_lines(out->out);
}

Status Git::init_bare(const std::filesystem::path& path, const std::string& object_format) const {
    auto out = run_checked(
        {"init", "--quiet", "--bare", "--object-format=" + object_format, "--", path.string()}, {}, "init");
    if (!out)
        return fail(out.error());
    return {};
}

Status Git::fetch_bundle(const std::filesystem::path& repo, const std::filesystem::path& bundle,
                         std::chrono::milliseconds timeout) const {
    auto out = run_checked({"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--",
                            bundle.string(), "+refs/*:refs/*"},
                           {.cwd = repo, .timeout = timeout}, "fetch from bundle");
    if (!out)
        return fail(out.error());
    return {};
}

Status Git::clone_bundle(const std::filesystem::path& path, const std::filesystem::path& bundle,
                         std::chrono::milliseconds timeout) const {
    // clone writes every ref into packed-refs in one go, where a fetch
    // writes (and pack-refs then deletes) one loose file per ref.
    auto out = run_checked({"clone", "--mirror", "--quiet", "--", bundle.string(), path.string()},
                           {.timeout = timeout}, "clone from bundle");
    if (!out)
        return fail(out.error());
    // The bundle is a scratch file: leave no remote that names it.
    auto removed =
        run_checked({"config", "--remove-section", "remote.origin"}, {.cwd = path}, "clone from bundle");
    if (!removed)
        return fail(removed.error());
    return {};
}

Status Git::set_refs(const std::filesystem::path& repo, const RefMap& refs,
                     const std::optional<std::string>& head) const {
    auto current = local_refs(repo);
    if (!current)
        return fail(current.error());
    // Deletions go first, in their own transaction: git cannot create
    // refs/heads/a/b in the transaction that deletes refs/heads/a.
    std::string deletions, updates;
    for (const auto& [name, target] : *current)
        if (!refs.contains(name))
            deletions += fmt::format("delete {}\n", name);
    for (const auto& [name, target] : refs) {
        auto it = current->find(name);
        if (it == current->end() || it->second.oid != target.oid)
            updates += fmt::format("update {} {}\n", name, target.oid);
    }
    for (const std::string* input : {&deletions, &updates}) {
        if (input->empty())
            continue;
        auto out = run_checked({"update-ref", "--stdin"}, {.cwd = repo, .stdin_data = *input}, "update-ref");
        if (!out)
            return fail(out.error());
    }
    if (head) {
        auto out = run_checked({"symbolic-ref", "HEAD", *head}, {.cwd = repo}, "symbolic-ref HEAD");
        if (!out)
            return fail(out.error());
    }
    auto packed = run_checked({"pack-refs", "--all", "--prune"}, {.cwd = repo}, "pack-refs");
    if (!packed)
        return fail(packed.error());
    return {};
}

Status Git::detach_head(const std::filesystem::path& repo, const std::string& oid) const {
    auto out = run_checked({"update-ref", "--no-deref", "HEAD", oid}, {.cwd = repo}, "detach HEAD");
    if (!out)
        return fail(out.error());
    return {};
}

Status Git::push(const std::filesystem::path& repo, const Remote& remote,
                 const std::vector<std::string>& refspecs, std::chrono::milliseconds timeout) const {
    // Not --porcelain: a rejected ref's reason then goes to stdout, and errors quote stderr.
    std::vector<std::string> args = {"push", "--atomic", "--prune", "--quiet", "--", remote.url};
    args.insert(args.end(), refspecs.begin(), refspecs.end());
    auto out = run_checked(std::move(args), {.cwd = repo, .timeout = timeout, .remote = &remote},
                           fmt::format("push to {}", redact_url(remote.url)));
    if (!out)
        return fail(out.error());
    return {};
}

Status Git::add_refs(const std::filesystem::path& repo, const RefMap& refs) const {
    std::string input;
    for (const auto& [name, target] : refs)
        input += fmt::format("update {} {}\n", name, target.oid);
    if (input.empty())
        return {};
    auto out = run_checked({"update-ref", "--stdin"}, {.cwd = repo, .stdin_data = input}, "update-ref");
    if (!out)
        return fail(out.error());
    return {};
}

Result<std::map<std::string, std::string>> Git::object_types(const std::filesystem::path& repo,
                                                             const std::vector<std::string>& oids) const {
    if (oids.empty())
        return std::map<std::string, std::string>{};
    auto session = CatFileSession::start(*this, repo, k_session_timeout);
    if (!session)
        return fail(session.error());
    auto found = git::object_types(*session, oids);
    if (!found)
        return fail(found.error());
    if (auto s = session->finish(); !s)
        return fail(s.error());
    return found;
}

Result<bool> Git::is_ancestor(const std::filesystem::path& repo, const std::string& ancestor,
                              const std::string& descendant) const {
    auto out = run({"merge-base", "--is-ancestor", ancestor, descendant}, {.cwd = repo});
    if (!out)
        return fail(out.error());
    if (out->exit_code == 0 || out->exit_code == 1)
        return out->exit_code == 0;
    // Not commits (a tag to a tree, say): no fast-forward relation.
    return false;
}

namespace {

// Splits a child's output into lines as it arrives, handing each (without
// its newline) to `take`; a line over `max_line` bytes fails with Git
// naming `what`, so an output without newlines is never held.
class LineSplitter {
  public:
    LineSplitter(std::string_view what, std::size_t max_line, std::function<Status(std::string_view)> take)
        : m_what(what), m_max_line(max_line), m_take(std::move(take)) {}

    Status feed(std::span<const std::byte> chunk) {
        m_partial.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        std::size_t at = 0;
        for (auto nl = m_partial.find('\n'); nl != std::string::npos; nl = m_partial.find('\n', at)) {
            if (auto s = m_take(std::string_view(m_partial).substr(at, nl - at)); !s)
                return s;
            at = nl + 1;
        }
        m_partial.erase(0, at);
        if (m_partial.size() > m_max_line)
            return fail(Error::git(fmt::format("{}: a line over {} bytes", m_what, m_max_line)));
        return {};
    }
    // Fails when the output ended mid-line.
    [[nodiscard]] Status finish() const {
        if (!m_partial.empty())
            return fail(Error::git(fmt::format("{}: the listing ended mid-line", m_what)));
        return {};
    }

  private:
    std::string m_what;
    std::size_t m_max_line;
    std::function<Status(std::string_view)> m_take;
    std::string m_partial;
};

// rev-list's input on --stdin: `tips`, then `excluded` as negatives.
std::string rev_list_input(const std::vector<std::string>& tips, const std::vector<std::string>& excluded) {
    std::string input;
    for (const auto& t : tips)
        input += t + "\n";
    for (const auto& e : excluded)
        input += "^" + e + "\n";
    return input;
}

} // namespace

Result<BundleBoundary> Git::bundle_boundary(const std::filesystem::path& repo,
                                            const std::vector<std::string>& tips,
                                            const std::vector<std::string>& excluded,
                                            std::chrono::milliseconds timeout) const {
    BundleBoundary walk;
    if (tips.empty())
        return walk;
    // Looked up by the line itself (no string made for each new commit).
    const std::set<std::string, std::less<>> wanted(tips.begin(), tips.end());
    // Every new commit is a line: only the tips among them are kept.
    LineSplitter lines("rev-list --boundary", 128, [&](std::string_view line) -> Status {
        const bool boundary = line.starts_with('-');
        if (boundary)
            line.remove_prefix(1);
        if (!is_object_id(line))
            return fail(Error::git(fmt::format("rev-list: not an object id: \"{}\"", line.substr(0, 80))));
        if (!boundary) {
            walk.any_new = true;
            if (auto it = wanted.find(line); it != wanted.end())
                walk.new_tips.insert(*it);
            return {};
        }
        if (walk.prerequisites.size() == k_max_prerequisites)
            return fail(Error::git(fmt::format(
                "rev-list: the new commits have more than {} parents among the old ones (a bundle "
                "header would list them all)",
                k_max_prerequisites)));
        walk.prerequisites.emplace_back(line);
        return {};
    });
    auto out = run_checked({"rev-list", "--boundary", "--stdin"},
                           {.cwd = repo,
                            .timeout = timeout,
                            .stdin_data = rev_list_input(tips, excluded),
                            .on_stdout = [&](std::span<const std::byte> chunk) { return lines.feed(chunk); }},
                           "rev-list --boundary");
    if (!out)
        return fail(out.error());
    if (auto s = lines.finish(); !s)
        return fail(s.error());
    return walk;
}

Status Git::fsck(const std::filesystem::path& repo, std::chrono::milliseconds timeout) const {
    auto out = run({"fsck", "--full", "--no-progress", "--no-dangling"}, {.cwd = repo, .timeout = timeout});
    if (!out)
        return fail(out.error());
    if (!out->ok())
        return fail(
            Error::integrity(fmt::format("git fsck: {}", tail_lines(redact(out->err + out->out), 5))));
    return {};
}

Status Git::list_objects(const std::filesystem::path& repo, const std::vector<std::string>& tips,
                         const std::vector<std::string>& excluded, std::size_t blob_limit,
                         const ObjectBatchSink& on_objects, std::chrono::milliseconds timeout) const {
    if (tips.empty())
        return {};
    // Lines are handed on as they arrive, a batch at a time: the listing of a
    // whole history is never held.
    std::vector<std::string> batch;
    LineSplitter lines("rev-list", 128, [&](std::string_view line) -> Status {
        if (!is_object_id(line))
            return fail(Error::git(fmt::format("rev-list: not an object id: \"{}\"", line.substr(0, 80))));
        batch.emplace_back(line);
        if (batch.size() < k_object_batch)
            return {};
        auto s = on_objects(batch);
        batch.clear();
        return s;
    });
    auto out = run_checked({"rev-list", "--objects", "--no-object-names", "--stdin",
                            fmt::format("--filter=blob:limit={}", blob_limit + 1)},
                           {.cwd = repo,
                            .timeout = timeout,
                            .stdin_data = rev_list_input(tips, excluded),
                            .on_stdout = [&](std::span<const std::byte> chunk) { return lines.feed(chunk); }},
                           "rev-list");
    if (!out)
        return fail(out.error());
    if (auto s = lines.finish(); !s)
        return s;
    if (!batch.empty())
        return on_objects(batch);
    return {};
}

} // namespace snapshotter::git
