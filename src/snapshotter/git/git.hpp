// Every git invocation of snapshotter goes through this module: argv vectors
// built here and nowhere else, run by util/process with an isolated
// environment (no system or user config, a private HOME, no hooks, no
// prompts, a transport allow-list). Credentials reach git through a
// credential helper that prints a 0600 file in a private temporary directory
// that exists only while that git command runs; the child's environment names
// the file, never the token, and no command line or URL holds it. An ssh key
// and known_hosts lines live in such a directory too, for one git invocation.
#pragma once

#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/child.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/process.hpp"
#include "snapshotter/util/url.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::git {

// What a ref points at: `oid`, and for an annotated tag the object it peels
// to (empty otherwise).
struct RefTarget {
    std::string oid;
    std::string peeled;
    bool operator==(const RefTarget&) const = default;
};

// Ref name to target, sorted by name.
using RefMap = std::map<std::string, RefTarget>;

// A remote repository as git reaches it.
struct Remote {
    std::string url;        // never holds a password (checked by parse_git_url)
    TransportPolicy policy; // which transports git may use
    std::string username;   // with `password`: basic auth for http(s)
    std::string password;   // the token; empty when anonymous
    SshSettings ssh;        // key and host-key checking for ssh URLs
    RedirectPolicy redirects = RedirectPolicy::same_origin; // which http(s) redirects git follows
};

// The refs of a remote and where its HEAD points.
struct RemoteState {
    RefMap refs;                         // every ref the server advertised (peeled where annotated)
    std::optional<std::string> head;     // target of HEAD when the server says it
    std::optional<std::string> head_oid; // what HEAD resolves to, when the server says it
};

// The phrase of the error a shallow upstream (a repository whose history is
// cut, as `git clone --depth` leaves it) causes in either engine.
inline constexpr std::string_view k_shallow_upstream = "the upstream is a shallow repository";

// True when `refname` matches `pattern` ("refs/heads/*" is a prefix match,
// anything else an exact one).
bool ref_matches(std::string_view pattern, std::string_view refname);

// The refs of `refs` that match any of `patterns`.
RefMap select_refs(const RefMap& refs, const std::vector<std::string>& patterns);

// "sha1" or "sha256" from the length of an object id; empty if neither.
std::string object_format_of(std::string_view oid);

// Whether `text` is a full object id as git prints it (40 or 64 lowercase hex digits).
bool is_object_id(std::string_view text);

// What a fetch does with a shallow upstream (a `git clone --depth` mirror).
enum class Shallow {
    refuse, // fail with k_shallow_upstream: its history is incomplete
    accept, // fetch with --update-shallow: the mirror becomes equally shallow
};

// The ref under which the object a detached HEAD holds is kept in a mirror
// and listed in a bundle, so that a HEAD no selected ref reaches is stored.
inline constexpr std::string_view k_head_ref = "refs/snapshotter/head";

// The shallow boundary of `repo` (its `shallow` file: commits whose parents
// it lacks), sorted; empty for a complete repository. Fails with Git on a
// malformed file.
Result<std::vector<std::string>> read_shallow(const std::filesystem::path& repo);

// Make `repo` shallow at `oids` (its `shallow` file, one oid a line); no file when `oids` is empty.
Status write_shallow(const std::filesystem::path& repo, const std::vector<std::string>& oids);

// A mirror holding more loose ref files than this after a fetch has its refs
// packed: git reads a packed-refs file in one go, and thousands of loose
// files made every later command of an incremental slow.
inline constexpr std::size_t k_loose_refs_to_pack = 64;
// At most this many refs are fetched by exact name into a kept mirror
// (update_mirror_refs_to); more take the mirror's patterns.
inline constexpr std::size_t k_exact_fetch_refs = 256;

// How a kept mirror's fetch names the refs it updates (update_mirror_refs_to).
enum class FetchBy {
    // "+<ref>:<ref>": git lists the remote's refs again (an ls-refs round
    // trip) and stores their tips as the server holds them then.
    name,
    // "+<oid>:<ref>": the listed tips themselves. git then lists no refs
    // (git >= 2.20, every refspec an exact object id, --no-tags) and makes
    // no connection at all when the mirror holds every one of them (a ref
    // moved back). For a listing made over protocol v2, whose upload-pack
    // serves any object it holds; a fetch that fails (a server that refuses
    // such wants, a tip gone since the listing) is made again by name.
    object_id,
};
// A mirror fetch writes a commit-graph layer for the commits it brings
// (fetch.writeCommitGraph, --split) when the mirror holds at least this many
// refs, and always when it fetches by patterns (a new or much changed
// mirror): git then walks the old tips given as negatives (`bundle create
// --not`, `rev-list`, fetch's connectivity check) from the graph instead of
// parsing each commit (measured at 10,271 refs: `bundle create` 75 -> 45 ms,
// `rev-list` 55 -> 22 ms, the layer written in about 20 ms). With fewer
// refs the walks are short and the write would cost more than it saves.
inline constexpr std::size_t k_commit_graph_refs = 1000;

// What one walk of the commits some tips reach and some old commits do not
// tells an incremental bundle (GitApi::bundle_boundary).
struct BundleBoundary {
    std::vector<std::string>
        prerequisites; // the boundary: old commits that are parents of new ones, as git lists them
    std::set<std::string> new_tips; // the tips that are commits the walk shows (new ones)
    bool any_new = false;           // whether the walk shows any commit
};
// A walk whose boundary holds more commits fails (a bundle header of them
// would pass the 64 MiB a header may take).
inline constexpr std::size_t k_max_prerequisites = std::size_t{1} << 20;

// Receives object ids in batches (GitApi::list_objects).
using ObjectBatchSink = std::function<Status(const std::vector<std::string>& oids)>;
// At most this many object ids go to an ObjectBatchSink at once.
inline constexpr std::size_t k_object_batch = 4096;

// The git operations the actions use, as an interface: Git below runs the
// real git binary; unit tests implement it to run the actions in-process
// (tests/unit/fault_git.hpp). Every method is const and may be called from
// several threads at once.
class GitApi {
  public:
    GitApi() = default;
    GitApi(const GitApi&) = default;
    GitApi(GitApi&&) = default;
    GitApi& operator=(const GitApi&) = default;
    GitApi& operator=(GitApi&&) = default;
    virtual ~GitApi() = default;

    // "2.39.5".
    [[nodiscard]] virtual const std::string& version() const = 0;

    // List the remote's refs and HEAD (git ls-remote --symref).
    virtual Result<RemoteState> ls_remote(const Remote& remote, std::chrono::milliseconds timeout) const = 0;

    // Object format and HEAD of a remote that has no refs at all (an empty
    // repository), which ls-remote cannot tell; no HEAD from a v0 server,
    // which cannot advertise an unborn one.
    virtual Result<std::pair<std::string, std::optional<std::string>>>
    probe_empty_remote(const Remote& remote, std::chrono::milliseconds timeout) const = 0;

    // Make `mirror` a bare repository of `object_format` holding exactly the
    // remote's refs that match `patterns` (fetch --prune with forced refspecs),
    // plus snapshotter's own refs under refs/snapshotter/. The caller holds
    // the mirror's FileLock, so git lock files found in it were left by a
    // process killed mid-update and are removed first.
    // With Shallow::accept a shallow upstream makes the mirror shallow
    // (read_shallow() tells its boundary) instead of failing.
    virtual Status update_mirror(const std::filesystem::path& mirror, const std::string& object_format,
                                 const Remote& remote, const std::vector<std::string>& patterns,
                                 std::chrono::milliseconds timeout,
                                 Shallow shallow = Shallow::refuse) const = 0;

    // Fetch the remote's HEAD into `mirror` as k_head_ref (a detached HEAD's
    // object, which no selected ref may reach); returns the oid fetched.
    virtual Result<std::string> fetch_head(const std::filesystem::path& mirror, const Remote& remote,
                                           std::chrono::milliseconds timeout, Shallow shallow) const = 0;

    // The refs of a local repository, peeled where annotated.
    virtual Result<RefMap> local_refs(const std::filesystem::path& repo) const = 0;

    // Stream a bundle of `revs` of `repo` into `sink`: ref names to include,
    // and "^<oid>" for objects the bundle may assume (its prerequisites).
    virtual Status bundle_create(const std::filesystem::path& repo, const std::vector<std::string>& revs,
                                 const OutputSink& sink, std::chrono::milliseconds timeout) const = 0;

    // One `git rev-list --boundary` of the commits `tips` (object ids) reach
    // and the commits `excluded` do not: which of `tips` are new commits,
    // whether any commit is, and the boundary, the prerequisites `git bundle
    // create` writes for the same revisions (git/bundle_revs.hpp). Fails with
    // Git on a line that is not an object id or more than
    // k_max_prerequisites boundary commits.
    virtual Result<BundleBoundary> bundle_boundary(const std::filesystem::path& repo,
                                                   const std::vector<std::string>& tips,
                                                   const std::vector<std::string>& excluded,
                                                   std::chrono::milliseconds timeout) const = 0;

    // The refs a bundle file lists (git bundle list-heads).
    virtual Result<RefMap> bundle_heads(const std::filesystem::path& bundle) const = 0;

    // Create an empty bare repository at `path`.
    virtual Status init_bare(const std::filesystem::path& path, const std::string& object_format) const = 0;

    // Fetch every ref of `bundle` into `repo`, forced (+refs/*:refs/*).
    virtual Status fetch_bundle(const std::filesystem::path& repo, const std::filesystem::path& bundle,
                                std::chrono::milliseconds timeout) const = 0;

    // Make the refs of `repo` exactly `refs`: update or create those, delete
    // every other ref; then point HEAD at `head` when given.
    virtual Status set_refs(const std::filesystem::path& repo, const RefMap& refs,
                            const std::optional<std::string>& head) const = 0;

    // Detach HEAD of `repo` at `oid` (git update-ref --no-deref).
    virtual Status detach_head(const std::filesystem::path& repo, const std::string& oid) const = 0;

    // Push from `repo` to `remote` (git push --atomic --prune): `refspecs`
    // such as "+refs/heads/*:refs/heads/*" (forced; remote refs in such a
    // namespace that `repo` lacks are deleted) or ":refs/x" (a deletion).
    // Credentials reach git as for every remote command, never on argv.
    virtual Status push(const std::filesystem::path& repo, const Remote& remote,
                        const std::vector<std::string>& refspecs,
                        std::chrono::milliseconds timeout) const = 0;

    // Create or move `refs` in `repo`, leaving every other ref alone.
    virtual Status add_refs(const std::filesystem::path& repo, const RefMap& refs) const = 0;

    // The type ("commit", "tag", ...) of each of `oids` that exists in `repo`.
    virtual Result<std::map<std::string, std::string>>
    object_types(const std::filesystem::path& repo, const std::vector<std::string>& oids) const = 0;

    // Whether commit `ancestor` is reachable from `descendant` in `repo`.
    virtual Result<bool> is_ancestor(const std::filesystem::path& repo, const std::string& ancestor,
                                     const std::string& descendant) const = 0;

    // git fsck --full; the error names what fsck reported.
    virtual Status fsck(const std::filesystem::path& repo, std::chrono::milliseconds timeout) const = 0;

    // Start `git <args>` in `repo` as a long-lived child with the isolated
    // environment and no remote, for callers that stream into its stdin
    // (git/index_pack.hpp).
    virtual Result<Child> spawn(const std::filesystem::path& repo, std::vector<std::string> args,
                                std::chrono::milliseconds timeout) const = 0;

    // update_mirror(), returning the refs of `mirror` after it (as
    // local_refs() reads them), so that a caller needs no second listing.
    // The mirror's refs end up packed whenever the fetch left many loose ones
    // (k_loose_refs_to_pack), as `git clone --mirror` leaves them.
    virtual Result<RefMap> update_mirror_refs(const std::filesystem::path& mirror,
                                              const std::string& object_format, const Remote& remote,
                                              const std::vector<std::string>& patterns,
                                              std::chrono::milliseconds timeout, Shallow shallow) const = 0;

    // update_mirror_refs() for a mirror that already holds most of `listed`
    // (the remote's refs, as listed, matching `patterns`): only the refs
    // whose tip differs are fetched, `by` exact name (a protocol v2 server
    // then advertises only those, not every ref) or by their listed object
    // ids (FetchBy), and the mirror's refs `listed` lacks are deleted
    // locally (refs/snapshotter/ refs stay). A new or unusable mirror, or
    // more than k_exact_fetch_refs differing refs, take update_mirror_refs()
    // instead. Returns the refs of `mirror` after it, as git reads them.
    virtual Result<RefMap> update_mirror_refs_to(const std::filesystem::path& mirror,
                                                 const std::string& object_format, const Remote& remote,
                                                 const std::vector<std::string>& patterns,
                                                 const RefMap& listed, std::chrono::milliseconds timeout,
                                                 Shallow shallow, FetchBy by) const = 0;

    // Roll the smaller packs of `repo` and all its loose objects into one
    // pack, so that the packs left form a geometric progression (each holds
    // at least twice the objects of the next smaller one): `git repack -d
    // --geometric=2`. Drops no object (loose ones are packed whatever
    // reaches them); for a kept mirror past needs_repack() (git/object_store.hpp).
    virtual Status repack_geometric(const std::filesystem::path& repo,
                                    std::chrono::milliseconds timeout) const = 0;

    // Make `path` (absent or an empty directory) a bare repository holding
    // every object and ref of the complete bundle `bundle` (no
    // prerequisites), its refs packed in one write, as `git clone --mirror`
    // of the bundle makes it; no remote is configured and HEAD is as
    // init_bare() leaves it.
    virtual Status clone_bundle(const std::filesystem::path& path, const std::filesystem::path& bundle,
                                std::chrono::milliseconds timeout) const = 0;

    // Hand `on_objects` the objects `tips` reach and `excluded` do not
    // (rev-list --objects) as git lists them, in batches of at most
    // k_object_batch, blobs of more than `blob_limit` bytes left out by git
    // itself (a blob:limit filter: git skips them unread); for finding Git
    // LFS pointers (docs/lfs.md). Fails with Git on a line that is not an
    // object id, or with what `on_objects` failed with (git is then stopped).
    virtual Status list_objects(const std::filesystem::path& repo, const std::vector<std::string>& tips,
                                const std::vector<std::string>& excluded, std::size_t blob_limit,
                                const ObjectBatchSink& on_objects,
                                std::chrono::milliseconds timeout) const = 0;
};

// GitApi on the git binary: argv vectors built here, run with the isolated
// environment described at the top of this file.
class Git final : public GitApi {
  public:
    // Prepare the private HOME and config and read `git version`.
    static Result<Git> create();

    // GitApi, whose contracts say what each does.
    [[nodiscard]] const std::string& version() const override { return m_version; }
    Result<RemoteState> ls_remote(const Remote& remote, std::chrono::milliseconds timeout) const override;
    Result<std::pair<std::string, std::optional<std::string>>>
    probe_empty_remote(const Remote& remote, std::chrono::milliseconds timeout) const override;
    Status update_mirror(const std::filesystem::path& mirror, const std::string& object_format,
                         const Remote& remote, const std::vector<std::string>& patterns,
                         std::chrono::milliseconds timeout, Shallow shallow = Shallow::refuse) const override;
    Result<std::string> fetch_head(const std::filesystem::path& mirror, const Remote& remote,
                                   std::chrono::milliseconds timeout, Shallow shallow) const override;
    Result<RefMap> local_refs(const std::filesystem::path& repo) const override;
    Status bundle_create(const std::filesystem::path& repo, const std::vector<std::string>& revs,
                         const OutputSink& sink, std::chrono::milliseconds timeout) const override;
    Result<BundleBoundary> bundle_boundary(const std::filesystem::path& repo,
                                           const std::vector<std::string>& tips,
                                           const std::vector<std::string>& excluded,
                                           std::chrono::milliseconds timeout) const override;
    Result<RefMap> bundle_heads(const std::filesystem::path& bundle) const override;
    Status init_bare(const std::filesystem::path& path, const std::string& object_format) const override;
    Status fetch_bundle(const std::filesystem::path& repo, const std::filesystem::path& bundle,
                        std::chrono::milliseconds timeout) const override;
    Status set_refs(const std::filesystem::path& repo, const RefMap& refs,
                    const std::optional<std::string>& head) const override;
    Status detach_head(const std::filesystem::path& repo, const std::string& oid) const override;
    Status push(const std::filesystem::path& repo, const Remote& remote,
                const std::vector<std::string>& refspecs, std::chrono::milliseconds timeout) const override;
    Status add_refs(const std::filesystem::path& repo, const RefMap& refs) const override;
    Result<std::map<std::string, std::string>>
    object_types(const std::filesystem::path& repo, const std::vector<std::string>& oids) const override;
    Result<bool> is_ancestor(const std::filesystem::path& repo, const std::string& ancestor,
                             const std::string& descendant) const override;
    Status fsck(const std::filesystem::path& repo, std::chrono::milliseconds timeout) const override;
    Result<Child> spawn(const std::filesystem::path& repo, std::vector<std::string> args,
                        std::chrono::milliseconds timeout) const override;
    Result<RefMap> update_mirror_refs(const std::filesystem::path& mirror, const std::string& object_format,
                                      const Remote& remote, const std::vector<std::string>& patterns,
                                      std::chrono::milliseconds timeout, Shallow shallow) const override;
    Result<RefMap> update_mirror_refs_to(const std::filesystem::path& mirror,
                                         const std::string& object_format, const Remote& remote,
                                         const std::vector<std::string>& patterns, const RefMap& listed,
                                         std::chrono::milliseconds timeout, Shallow shallow,
                                         FetchBy by) const override;
    Status repack_geometric(const std::filesystem::path& repo,
                            std::chrono::milliseconds timeout) const override;
    Status clone_bundle(const std::filesystem::path& path, const std::filesystem::path& bundle,
                        std::chrono::milliseconds timeout) const override;

    Status list_objects(const std::filesystem::path& repo, const std::vector<std::string>& tips,
                        const std::vector<std::string>& excluded, std::size_t blob_limit,
                        const ObjectBatchSink& on_objects, std::chrono::milliseconds timeout) const override;

  private:
    struct Invocation {
        std::filesystem::path cwd;
        std::chrono::milliseconds timeout = std::chrono::minutes{10};
        const Remote* remote = nullptr; // sets the allow-list and credentials
        std::optional<std::string> stdin_data;
        OutputSink on_stdout;
        bool trace_packets = false;
    };

    explicit Git(TempDir home) : m_home(std::move(home)) {}
    // The isolated environment of a git child; `credential_file` (empty when
    // anonymous) names the file the credential helper prints.
    std::vector<std::string> environment(const Invocation& inv, const fs::path& credential_file) const;
    Result<ProcessResult> run(std::vector<std::string> args, const Invocation& inv) const;
    // Run and turn a non-zero exit into a GitError naming `what`.
    Result<ProcessResult> run_checked(std::vector<std::string> args, const Invocation& inv,
                                      std::string_view what) const;
    // Whether a mirror fetch writes a commit-graph layer (k_commit_graph_refs).
    enum class CommitGraph { write, skip };
    // git fetch of `refspecs` (one a line) from `remote` into `mirror`, with
    // --prune when `prune`; a shallow upstream refused unless `shallow` accepts it.
    Status fetch_refspecs(const std::filesystem::path& mirror, const Remote& remote,
                          const std::string& refspecs, bool prune, std::chrono::milliseconds timeout,
                          Shallow shallow, CommitGraph graph) const;
    // Pack the refs of `mirror` when a fetch left more than k_loose_refs_to_pack loose ones.
    Status pack_loose_refs(const std::filesystem::path& mirror, std::chrono::milliseconds timeout) const;

    TempDir m_home;
    std::string m_version;
};

} // namespace snapshotter::git
