#include "snapshotter/snapshot/stream_engine.hpp"

#include "snapshotter/git/index_pack.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/chain_haves.hpp"
#include "snapshotter/snapshot/exactness.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Whether `oid` is a tip `manifest` records: a ref's object or peeled
// object, or its detached HEAD.
bool holds_tip(const Manifest& manifest, const std::string& oid) {
    if (manifest.head_oid == oid)
        return true;
    return std::any_of(manifest.refs.begin(), manifest.refs.end(),
                       [&oid](const auto& ref) { return ref.second.oid == oid || ref.second.peeled == oid; });
}

// The repository in which `options.verify: index` runs git index-pack:
// cache_dir/verify/<repo-key>.git, locked while in use. For an incremental it
// must hold the previous snapshot's objects (a thin pack's bases): it is
// reused while its refs equal the previous manifest's and otherwise rebuilt
// from the chain in storage. A full snapshot starts from an empty one.
struct IndexRepo {
    std::filesystem::path path;
    FileLock lock;
};

Result<IndexRepo> prepare_index_repo(const Context& ctx, const job::Repository& repo, const Manifest* base,
                                     const std::string& object_format, const Deadline& deadline) {
    auto verify_dir = cache_subdir(ctx.job.options, "verify");
    if (!verify_dir)
        return fail(verify_dir.error());
    const auto& dir = *verify_dir;
    std::error_code ec;
    auto lock = FileLock::acquire(dir / (layout::repo_key(repo.name) + ".lock"));
    if (!lock)
        return fail(lock.error());
    IndexRepo index{dir / (layout::repo_key(repo.name) + ".git"), std::move(*lock)};
    if (base != nullptr && std::filesystem::exists(index.path)) {
        if (auto refs = ctx.git.local_refs(index.path); refs && *refs == base->refs)
            return index;
    }
    std::filesystem::remove_all(index.path, ec);
    if (ec)
        return fail(Error::internal(fmt::format("cannot remove {}: {}", index.path.string(), ec.message())));
    if (base == nullptr) {
        if (auto s = ctx.git.init_bare(index.path, object_format); !s)
            return fail(s.error());
        return index;
    }
    auto step = SteadyClock::now();
    auto scratch = TempDir::create("verify-chain");
    if (!scratch)
        return fail(scratch.error());
    auto built = materialize(ctx.storage, ctx.git, *base, index.path, scratch->path(), deadline.left());
    if (!built) {
        std::filesystem::remove_all(index.path, ec);
        return fail(built.error());
    }
    spdlog::info("{}: rebuilt the objects of snapshot {} for index verification in {} ms", repo.name,
                 base->snapshot_id, elapsed_ms(step));
    return index;
}

// Passes a bundle to storage and, when given, to git index-pack on the way.
class IndexingWriter final : public storage::ObjectWriter {
  public:
    IndexingWriter(storage::ObjectWriter& inner, git::PackIndexer* indexer)
        : m_inner(inner), m_indexer(indexer) {}
    Status write(std::span<const std::byte> data) override {
        if (m_indexer != nullptr)
            if (auto s = m_indexer->feed(data); !s)
                return s;
        return m_inner.write(data);
    }
    Status commit() override { return m_inner.commit(); }
    void abort() override { m_inner.abort(); }

  private:
    storage::ObjectWriter& m_inner;
    git::PackIndexer* m_indexer;
};

// More haves for a negotiation in which the server lacks previous tips
// (snapshot/chain_haves.hpp): a moved ref's new tip that the chain's
// bundles hold (a branch reset to an ancestor of its lost tip: the server
// then sends nothing for it), the tips of earlier snapshots of the chain,
// then spaced first-parent ancestors of the lost tips from its bundles,
// which are remembered: they tell the ledger a rewrite apart. All of it is
// worked out only when the server lacks a tip (a rare night).
struct ChainHaves {
    std::map<std::string, std::set<std::string>> older; // lost tip -> proper ancestors found

    git::MoreHaves provider(storage::Storage& storage, const Manifest& parent, std::string object_format,
                            const git::RefMap& listed) {
        return [this, &storage, &parent, &listed, object_format = std::move(object_format)](
                   const std::vector<std::string>& lost, int round) -> std::vector<std::string> {
            spdlog::info("{}: negotiation round {}: the server lacks {} previous tip(s) of moved refs",
                         parent.repository, round, lost.size());
            std::vector<std::string> wanted; // the moved refs' new tips (the others are haves already)
            for (const auto& [ref, target] : listed)
                if (auto was = parent.refs.find(ref); was == parent.refs.end() || was->second != target)
                    wanted.push_back(target.peeled.empty() ? target.oid : target.peeled);
            auto found = chain_ancestors(storage, parent, lost, object_format, wanted);
            older = std::move(found.by_tip);
            // The new tips the chain holds first: within k_max_more_haves they are never the ones cut.
            std::vector<std::string> haves = std::move(found.present);
            auto earlier = earlier_chain_tips(storage, parent.repository, parent);
            haves.insert(haves.end(), earlier.begin(), earlier.end());
            haves.insert(haves.end(), found.commits.begin(), found.commits.end());
            return haves;
        };
    }
};

// How long a listed session may wait for its fetch before it is reopened.
constexpr auto k_session_idle = std::chrono::seconds{20};

class StreamEngine final : public Engine {
  public:
    explicit StreamEngine(const EngineContext& ec) : m_ec(ec) {}

    [[nodiscard]] std::string_view name() const override { return "stream"; }

    Result<Listing> list() override {
        auto listed = git::ListedRemote::open(stream_request(m_ec));
        if (!listed)
            return fail(listed.error());
        const auto& l = listed->listing();
        Listing listing{l.refs, l.refused, l.head_state, l.object_format};
        m_session.emplace(std::move(*listed));
        return listing;
    }

    Result<Produced> produce(const SnapshotPlan& planned, const PlanInput& input) override;

  private:
    const EngineContext& m_ec;
    std::optional<git::ListedRemote> m_session; // the session that listed, kept open for the fetch
};

Result<Produced> StreamEngine::produce(const SnapshotPlan& planned, const PlanInput& input) {
    const auto& ctx = m_ec.ctx;
    const auto& repo = m_ec.repo;
    const auto& deadline = m_ec.deadline;
    const auto& listing = input.listing;
    const Manifest* parent = planned.parent ? &*input.previous : nullptr;
    Produced produced;
    bool incremental = planned.kind == SnapshotKind::incremental;
    std::optional<IndexRepo> index_repo;
    std::optional<git::PackIndexer> indexer;
    if (ctx.job.options.verify == job::VerifyMode::index) {
        auto prepared =
            prepare_index_repo(ctx, repo, incremental ? parent : nullptr, listing.object_format, deadline);
        if (!prepared && incremental && prepared.error().kind == ErrorKind::Integrity) {
            // The chain cannot be replayed: self-heal with a new full chain.
            spdlog::warn("{}: previous chain unusable for index verification ({}); taking a full snapshot",
                         repo.name, prepared.error().message);
            auto again = input;
            again.chain = ChainState::unreplayable;
            produced.replanned = snapshot_plan(again);
            incremental = false;
            auto fresh = prepare_index_repo(ctx, repo, nullptr, listing.object_format, deadline);
            if (!fresh)
                return fail(fresh.error());
            index_repo.emplace(std::move(*fresh));
        } else if (!prepared) {
            return fail(prepared.error());
        } else {
            index_repo.emplace(std::move(*prepared));
        }
        auto started = git::PackIndexer::start(ctx.git, index_repo->path, deadline.left());
        if (!started)
            return fail(started.error());
        indexer.emplace(std::move(*started));
    }
    const SnapshotPlan& plan = produced.replanned ? *produced.replanned : planned;
    auto key = layout::bundle_key(repo.name, plan.snapshot_id);
    auto writer = ctx.storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    // Git LFS pointers are read from the pack as it passes (docs/lfs.md); a
    // changed pointer is a delta on the old one, which a thin pack leaves out.
    // A pack the LFS step reads whole (full, or not thin) passes a scanner of
    // its own that also follows HEAD to its .lfsconfig (the payload's lfs_url
    // makes that unneeded).
    std::optional<LfsPackScan> lfs_scan;
    std::optional<BundleScanTap> lfs_tap;
    const bool lfs_thin = incremental && !lfs_wants_full_pack(repo.lfs, input);
    if (repo.lfs != job::LfsMode::off && !index_repo) {
        if (!repo.lfs_url)
            lfs_scan.emplace(lfs_head_commit(listing.head, listing.selected));
        else
            lfs_scan.emplace();
        if (!lfs_thin)
            lfs_tap.emplace(&**writer, lfs_scan->make_scanner(listing.object_format));
    }
    IndexingWriter out(lfs_tap ? *lfs_tap : **writer, indexer ? &*indexer : nullptr);
    auto step = SteadyClock::now();
    // The session that listed the refs fetches too, unless it sat idle long
    // enough (index preparation) for the server to have dropped it.
    auto& session = m_session;
    if (session && SteadyClock::now() - session->listed_at() > k_session_idle)
        session.reset();
    auto request = stream_request(m_ec);
    // The parent's preserved old tips are haves too: a server that pruned a
    // previous tip may still have one of them.
    git::IncrementalExtras extras;
    if (incremental)
        for (const auto& [key, oid] : parent->preserved)
            extras.haves.push_back(oid);
    // A server that lost a previous tip (a reset branch, then a gc) is
    // offered older commits of the chain in further negotiation rounds.
    ChainHaves chain_haves;
    if (incremental)
        extras.more_haves =
            chain_haves.provider(ctx.storage, *parent, listing.object_format, listing.selected);
    // The walk anchor the chain recorded (git::WalkAnchor), used only while
    // its commit is still one of the parent's tips (or its detached HEAD): a
    // commit the chain holds. A shallow upstream's chain gets none.
    if (incremental && parent->walk_anchor && parent->shallow.empty() &&
        holds_tip(*parent, parent->walk_anchor->commit))
        extras.anchor = parent->walk_anchor;
    git::BlobScan blobs;
    if (lfs_scan && lfs_thin)
        extras.blobs = lfs_scan->hooks();
    if (lfs_scan)
        extras.thin_pack = lfs_thin;
    auto streamed =
        session ? (incremental ? session->incremental_bundle(parent->refs, out, parent->head_oid, extras)
                               : session->full_bundle(out, blobs))
        : incremental ? git::stream_incremental_bundle(request, parent->refs, out, parent->head_oid, extras)
                      : git::stream_full_bundle(request, out, blobs);
    if (!streamed) {
        out.abort();
        return fail(streamed.error());
    }
    // The proof before anything is committed: the refs the bundle lists and
    // the manifest will record are exactly those listed (a session reopened
    // after an idle wait lists again, and the server may have moved on).
    if (auto s = check_recorded_refs(repo.name, listing.selected, streamed->refs); !s) {
        out.abort();
        return fail(s.error());
    }
    if (auto s = check_recorded_head(repo.name, listing.head, streamed->head_state); !s) {
        out.abort();
        return fail(s.error());
    }
    // A pack without objects (a new ref on a commit the chain has) is not worth a bundle.
    if (streamed->pack_written && streamed->object_count == 0 && incremental)
        streamed->pack_written = false;
    if (streamed->pack_written) {
        produced.timings_ms["stream"] = elapsed_ms(step);
        if (indexer) {
            step = SteadyClock::now();
            auto indexed = indexer->finish();
            if (!indexed) {
                out.abort();
                // Rebuilt from the chain next time, in case the cache was what lacked a base.
                std::error_code ec;
                std::filesystem::remove_all(index_repo->path, ec);
                return fail(indexed.error());
            }
            produced.timings_ms["index_pack"] = elapsed_ms(step);
        }
        if (auto s = out.commit(); !s)
            return fail(s.error());
    } else {
        out.abort();
    }
    if (indexer)
        indexer->cancel();
    produced.refs = streamed->refs;
    produced.head = streamed->head_state;
    // The next night's walk anchor: from this pack, else (an incremental) the parent's.
    produced.walk_anchor = streamed->pack_written ? streamed->next_anchor : std::nullopt;
    if (incremental) {
        if (streamed->anchor_sent)
            spdlog::debug("{}: walk anchor {} sent", repo.name, parent->walk_anchor->commit);
        if (!produced.walk_anchor)
            produced.walk_anchor = parent->walk_anchor;
    }
    // A shallow upstream (options.allow_shallow): the boundary this fetch
    // reported and, for an incremental, the boundary the chain already has.
    std::set<std::string> shallow(streamed->shallow.begin(), streamed->shallow.end());
    if (incremental)
        shallow.insert(parent->shallow.begin(), parent->shallow.end());
    produced.shallow.assign(shallow.begin(), shallow.end());
    if (incremental) {
        produced.bundles = parent->bundles;
    } else if (parent != nullptr && !parent->preserved.empty()) {
        // A stateless full bundle cannot carry old tips the server no longer has.
        spdlog::info("{}: a new full chain starts; {} preserved tips stay in the older chain", repo.name,
                     parent->preserved.size());
    }
    if (streamed->pack_written)
        produced.bundles.push_back(BundleInfo{plan.snapshot_id, key, streamed->bundle_size, streamed->sha256,
                                              streamed->prerequisites});
    // Without local history, the pack's commits (scanned as it passed, whatever
    // options.verify says) tell a fast-forward from a
    // rewrite in the common cases (ancestry_from_pack); a moved ref stays
    // "updated" where they cannot, and its old tip is preserved either way.
    // The index repository of an incremental holds both old and new
    // objects, so there the ledger can always tell.
    AncestryAnswers answers;
    if (parent != nullptr && incremental)
        answers =
            ancestry_from_pack(plan, parent->refs, streamed->refs, streamed->pack_commits, chain_haves.older);
    if (parent != nullptr && index_repo && incremental) {
        auto known = ancestry_in(ctx.git, index_repo->path, plan, parent->refs);
        if (!known)
            return fail(known.error());
        answers = std::move(*known);
    }
    produced.ledger = settle_ledger(repo.name, plan, answers);
    // A new full chain cannot carry the old tips: deletions are counted and logged, not preserved.
    if (!incremental)
        produced.ledger.preserved.clear();
    // The index repository now matches this snapshot, ready for the next incremental.
    if (index_repo)
        if (auto s = ctx.git.set_refs(index_repo->path, produced.refs, named_head(produced.head)); !s) {
            spdlog::warn("{}: index verification cache dropped: {}", repo.name, s.error().message);
            std::error_code ec;
            std::filesystem::remove_all(index_repo->path, ec);
        }
    // Git LFS content of the new commits (snapshot/lfs_fetch.hpp, docs/lfs.md).
    if (auto s = add_lfs_streamed(m_ec, plan, input, index_repo ? &index_repo->path : nullptr,
                                  lfs_scan ? &*lfs_scan : nullptr, lfs_thin, produced);
        !s)
        return fail(s.error());
    return produced;
}

} // namespace

std::unique_ptr<Engine> make_stream_engine(const EngineContext& ec) {
    return std::make_unique<StreamEngine>(ec);
}

} // namespace snapshotter::snapshot
