// The engines that take a snapshot: each lists the remote's refs, then
// produces what a snapshot_plan() asks for (a bundle in storage and what the
// manifest records of it). The stream engine (stream_engine.hpp) speaks
// protocol v2 and writes the server's pack straight into the bundle; the cli
// engine (cli_engine.hpp) fetches into a cached mirror with git and runs
// `git bundle create`. choose_engine() is the only place that picks one.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/lfs_fetch.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/snapshot/remote.hpp"
#include "snapshotter/snapshot/snapshot_plan.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::snapshot {

// The end of one repository's time budget (options.timeout_s).
class Deadline {
  public:
    explicit Deadline(int seconds)
        : m_end(std::chrono::steady_clock::now() + std::chrono::seconds{seconds}) {}
    // Time left, at least one second so a last step can report its error.
    [[nodiscard]] std::chrono::milliseconds left() const;

  private:
    std::chrono::steady_clock::time_point m_end;
};

// What an engine works with for one repository; it must outlive the engine.
struct EngineContext {
    const Context& ctx;
    const job::Repository& repo;
    const RemoteAccess& remote;
    const Deadline& deadline;
};

// What an engine produced, as the manifest records it.
struct Produced {
    // The plan followed instead of the one given: a full one when the chain
    // could not be verified on (ChainState::unreplayable); nullopt otherwise.
    std::optional<SnapshotPlan> replanned;
    git::RefMap refs;                            // the refs recorded, checked equal to the listing
    git::HeadState head;                         // HEAD as recorded, checked equal to the listing
    std::vector<std::string> shallow;            // a shallow upstream's boundary, sorted
    std::vector<BundleInfo> bundles;             // the restore chain, oldest first
    Ledger ledger;                               // how refs moved, the preserved tips
    std::map<std::string, long long> timings_ms; // the engine's steps
    std::optional<LfsOutcome> lfs;              // the LFS step's (lfs_fetch.hpp); nullopt when it did not run
    std::optional<git::WalkAnchor> walk_anchor; // Manifest::walk_anchor; nullopt: none known
};

// One way of taking a snapshot of one repository. list() comes first and
// once; produce() at most once, after it.
class Engine {
  public:
    virtual ~Engine() = default;
    // "stream" | "cli", as manifests and results name it.
    [[nodiscard]] virtual std::string_view name() const = 0;
    // The remote's selected refs, HEAD and object format.
    virtual Result<Listing> list() = 0;
    // Fetch and store what `plan` (made from `input`, whose listing is this
    // engine's) asks for: a full or incremental bundle, or none for a
    // refs-only change. Nothing is visible in storage unless it succeeds.
    virtual Result<Produced> produce(const SnapshotPlan& plan, const PlanInput& input) = 0;
};

// An engine and its listing.
struct ChosenEngine {
    std::unique_ptr<Engine> engine;
    Listing listing;
    // Why `auto` used the cli engine: the stream engine's error, redacted; nullopt otherwise.
    std::optional<std::string> fallback;
};

// The engine options.engine names, with its listing: `stream` or `cli` as
// asked; `auto` lists with the stream engine and falls back to the cli
// engine when the server refuses the protocol (git::is_protocol_refusal).
Result<ChosenEngine> choose_engine(const EngineContext& ec);

// How snapshot_repository() gets its engine: choose_engine(), or a fake in tests.
using EngineChooser = std::function<Result<ChosenEngine>(const EngineContext&)>;

// Shared by the engines.

// The stream engine's request for `ec`: the transport with the time left, the
// ref patterns and the options' limits.
git::StreamRequest stream_request(const EngineContext& ec);

// `options.cache_dir`/`sub`, created when missing. A directory that cannot be
// created (a read-only root, a HOME that is not writable, as in a container run
// with --read-only) fails with a message naming the payload key that moves it.
Result<std::filesystem::path> cache_subdir(const job::Options& options, std::string_view sub);

// The answers to `plan`'s question from `repo`, a repository that holds every
// new tip: a parent tip missing from it cannot be an ancestor of any of them.
// Commits are read through `objects` (a session in `repo`) when given, else
// through a session of its own.
Result<AncestryAnswers> ancestry_in(const git::GitApi& git, const std::filesystem::path& repo,
                                    const SnapshotPlan& plan, const git::RefMap& parent_refs,
                                    git::CatFileSession* objects = nullptr);

// ledger_of(`plan`, `answers`), with a warning logged for each rewritten or deleted ref of `repository`.
Ledger settle_ledger(std::string_view repository, const SnapshotPlan& plan, const AncestryAnswers& answers);

} // namespace snapshotter::snapshot
