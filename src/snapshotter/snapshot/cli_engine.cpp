#include "snapshotter/snapshot/cli_engine.hpp"

#include "snapshotter/git/bundle_revs.hpp"
#include "snapshotter/git/cat_file.hpp"
#include "snapshotter/git/object_store.hpp"
#include "snapshotter/git/protocol.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/exactness.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"
#include "snapshotter/util/url.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using SteadyClock = std::chrono::steady_clock;

class CliEngine final : public Engine {
  public:
    [[nodiscard]] std::string_view name() const override { return "cli"; }

    CliEngine(const EngineContext& ec, CliListing listing) : m_ec(ec), m_listing(listing) {}

    Result<Listing> list() override;
    Result<Produced> produce(const SnapshotPlan& plan, const PlanInput& input) override;

  private:
    // The listing by `git ls-remote` (and, for an empty repository, a probe).
    Result<Listing> list_with_git();

    const EngineContext& m_ec;
    CliListing m_listing;
    // A listing made in-process spoke protocol v2: a kept mirror then
    // fetches the listed tips by object id (no second ls-refs).
    git::FetchBy m_fetch_by = git::FetchBy::name;
};

Result<Listing> CliEngine::list() {
    // git:// and http(s):// remotes are listed in-process (one protocol v2
    // ls-refs, the stream engine's), which saves a `git ls-remote` child;
    // ssh, file and servers that do not speak v2 are listed by git.
    if (m_listing == CliListing::in_process_first) {
        auto url = parse_git_url(m_ec.remote.remote.url, m_ec.remote.remote.policy);
        if (url && (url->transport == Transport::git || url->transport == Transport::http ||
                    url->transport == Transport::https)) {
            auto listed = git::list_remote(stream_request(m_ec));
            if (listed) {
                m_fetch_by = git::FetchBy::object_id;
                return Listing{std::move(listed->refs), std::move(listed->refused), listed->head_state,
                               listed->object_format};
            }
            if (!git::is_protocol_refusal(listed.error()))
                return fail(listed.error());
            spdlog::debug("{}: {}; listing with git ls-remote", m_ec.repo.name, listed.error().message);
        }
    }
    return list_with_git();
}

Result<Listing> CliEngine::list_with_git() {
    const auto& ctx = m_ec.ctx;
    const auto& repo = m_ec.repo;
    const auto& remote = m_ec.remote.remote;
    const auto& deadline = m_ec.deadline;
    auto state = ctx.git.ls_remote(remote, deadline.left());
    if (!state)
        return fail(state.error());
    if (state->refs.size() > static_cast<std::size_t>(ctx.job.options.max_refs))
        return fail(Error::git(
            fmt::format("ls-remote {}: the server advertised {} refs, more than {} (options.max_refs)",
                        redact_url(remote.url), state->refs.size(), ctx.job.options.max_refs)));
    auto screened = git::screen_refs(git::select_refs(state->refs, repo.refs), redact_url(remote.url));
    if (!screened)
        return fail(screened.error());
    Listing listing{std::move(screened->kept), std::move(screened->refused),
                    git::classify_head(state->head, state->head_oid), ""};
    if (!state->refs.empty()) {
        listing.object_format = git::object_format_of(state->refs.begin()->second.oid);
    } else {
        auto probe = ctx.git.probe_empty_remote(remote, deadline.left());
        if (!probe)
            return fail(probe.error());
        listing.object_format = probe->first;
        listing.head = git::classify_head(probe->second, std::nullopt);
    }
    if (listing.object_format.empty())
        return fail(Error::git(fmt::format("{}: unrecognised object id length", repo.name)));
    // git ls-remote never shows an unborn HEAD; a protocol v2 server says it
    // when asked, so both engines record the same HEAD. (v0 cannot say it.)
    if (listing.head.kind == git::HeadKind::absent && !listing.selected.empty())
        if (auto l = git::list_remote(stream_request(m_ec)); l && l->head_state.kind == git::HeadKind::unborn)
            listing.head = l->head_state;
    return listing;
}

Result<Produced> CliEngine::produce(const SnapshotPlan& plan, const PlanInput& input) {
    const auto& ctx = m_ec.ctx;
    const auto& repo = m_ec.repo;
    const auto& remote = m_ec.remote.remote;
    const auto& deadline = m_ec.deadline;
    const auto& options = ctx.job.options;
    const auto& listing = input.listing;
    const Manifest* parent = plan.parent ? &*input.previous : nullptr;
    const auto& selected = listing.selected;
    Produced produced;
    produced.head = listing.head;
    // One writer per mirror at a time.
    auto mirrors = cache_subdir(options, "mirrors");
    if (!mirrors)
        return fail(mirrors.error());
    auto mirror = *mirrors / (layout::repo_key(repo.name) + ".git");
    auto lock = FileLock::acquire(*mirrors / (layout::repo_key(repo.name) + ".lock"));
    if (!lock)
        return fail(lock.error());
    auto step = SteadyClock::now();
    const auto stored_before = git::measure_object_store(mirror).bytes;
    const auto shallow = options.allow_shallow ? git::Shallow::accept : git::Shallow::refuse;
    // The mirror's refs after the fetch, packed when the fetch left many loose.
    // A kept mirror fetches only the listed refs it lacks: by the listed
    // object ids after a protocol v2 listing (git lists no refs again), else
    // by name (the server then advertises those, not every ref: 100,000 on
    // a large host).
    auto mirror_refs =
        ctx.git.update_mirror_refs_to(mirror, listing.object_format, remote, plan.fetch.patterns, selected,
                                      deadline.left(), shallow, m_fetch_by);
    if (!mirror_refs)
        return fail(mirror_refs.error());
    // A detached HEAD may hold an object no selected ref reaches: fetch it by
    // name, so the bundle carries it (as k_head_ref) and restore can detach there.
    std::optional<std::string> head_tip;
    if (listing.head.kind == git::HeadKind::detached) {
        auto fetched = ctx.git.fetch_head(mirror, remote, deadline.left(), shallow);
        if (!fetched)
            return fail(fetched.error());
        if (auto s = check_recorded_head(repo.name, listing.head, {git::HeadKind::detached, *fetched}); !s)
            return fail(s.error());
        head_tip = *fetched;
        (*mirror_refs)[std::string(git::k_head_ref)] = {*fetched, ""};
    }
    produced.timings_ms["fetch"] = elapsed_ms(step);
    // git fetch cannot be capped while it runs: check what it added, and drop
    // a mirror that grew past the limit rather than keep the server's bytes.
    // (The fetch keeps what it brings as a pack, whose bytes and index count here.)
    const auto stored_after = git::measure_object_store(mirror);
    const auto added = stored_after.bytes > stored_before ? stored_after.bytes - stored_before : 0;
    if (options.max_pack_bytes > 0 && added > static_cast<std::uint64_t>(options.max_pack_bytes)) {
        std::error_code ec;
        std::filesystem::remove_all(mirror, ec);
        return fail(Error::git(
            fmt::format("fetch {}: the fetch added {} bytes, more than {} (options.max_pack_bytes)",
                        redact_url(remote.url), added, options.max_pack_bytes)));
    }
    // A pack a night, or the loose objects of a mirror kept before fetches
    // kept their packs: rolled together geometrically once past the bounds
    // (git/object_store.hpp), after the fetch was measured against its limit.
    // Housekeeping of a cache: a repack that fails (git leaves the packs it
    // had) is logged and tried again next night, the snapshot goes on.
    if (git::needs_repack(stored_after)) {
        step = SteadyClock::now();
        if (auto s = ctx.git.repack_geometric(mirror, deadline.left()); !s)
            spdlog::warn("{}: repacking the kept mirror failed, tried again next time: {}", repo.name,
                         s.error().message);
        produced.timings_ms["repack"] = elapsed_ms(step);
    }
    produced.refs = git::select_refs(*mirror_refs, repo.refs);
    // The proof before anything is written: git recorded exactly what was listed.
    if (auto s = check_recorded_refs(repo.name, selected, produced.refs); !s)
        return fail(s.error());
    // A shallow upstream made the mirror shallow (options.allow_shallow): record its boundary.
    if (shallow == git::Shallow::accept) {
        auto roots = git::read_shallow(mirror);
        if (!roots)
            return fail(roots.error());
        produced.shallow = std::move(*roots);
    }

    // One `git cat-file` session serves every object read up to the bundle
    // (ancestry, the bases' types, the LFS scan), started when first needed.
    std::optional<git::CatFileSession> session;
    auto objects = [&]() -> Result<git::CatFileSession*> {
        if (!session) {
            auto started = git::CatFileSession::start(ctx.git, mirror,
                                                      std::min(deadline.left(), git::k_session_timeout));
            if (!started)
                return fail(started.error());
            session.emplace(std::move(*started));
        }
        return &*session;
    };

    // The ledger; old tips stay reachable in the mirror so later full bundles carry them.
    produced.ledger = plan.ledger;
    std::map<std::string, std::string> types; // oid -> type of the bases and preserved tips present
    if (parent != nullptr) {
        auto reader = objects();
        if (!reader)
            return fail(reader.error());
        auto answers = ancestry_in(ctx.git, mirror, plan, parent->refs, *reader);
        if (!answers)
            return fail(answers.error());
        produced.ledger = settle_ledger(repo.name, plan, *answers);
        // One look-up for the preserved tips and the parent's tips (an
        // incremental's bases): which of them the mirror holds, and their types.
        std::vector<std::string> oids = plan.fetch.bases;
        for (const auto& [key, oid] : produced.ledger.preserved)
            oids.push_back(oid);
        auto present = git::object_types(**reader, oids);
        if (!present)
            return fail(present.error());
        types = std::move(*present);
        git::RefMap keep;
        for (const auto& [key, oid] : produced.ledger.preserved)
            if (types.contains(oid))
                keep[preserved_ref_name(key)] = {oid, ""};
        // Only the tips the mirror lacks under their name are written.
        for (auto it = keep.begin(); it != keep.end();) {
            auto held = mirror_refs->find(it->first);
            it = held != mirror_refs->end() && held->second.oid == it->second.oid ? keep.erase(it)
                                                                                  : std::next(it);
        }
        if (auto s = ctx.git.add_refs(mirror, keep); !s)
            return fail(s.error());
        for (const auto& [name, target] : keep)
            (*mirror_refs)[name] = target;
    }

    std::vector<std::string> revs;
    bool write = true;
    std::optional<LfsScan> lfs_scan; // the incremental's LFS scan, made by the walk that decides `write`
    if (plan.kind == SnapshotKind::incremental) {
        produced.bundles = parent->bundles;
        std::vector<std::string> tips;
        std::vector<git::BundleTip> bundle_tips;
        for (const auto& name : plan.fetch.changed) {
            const auto& target = produced.refs.at(name);
            tips.push_back(target.oid);
            bundle_tips.push_back({name, target.oid, target.peeled});
        }
        if (head_tip)
            bundle_tips.push_back({std::string(git::k_head_ref), *head_tip, ""});
        // The parent's tips, peeled to commits, are what the new bundle may assume.
        std::vector<std::string> excluded;
        for (const auto& oid : plan.fetch.bases)
            if (auto it = types.find(oid); it != types.end() && it->second == "commit")
                excluded.push_back(oid);
        std::sort(excluded.begin(), excluded.end());
        excluded.erase(std::unique(excluded.begin(), excluded.end()), excluded.end());
        auto reader = objects();
        if (!reader)
            return fail(reader.error());
        // The LFS scan walks the new objects: the changed tips' (an unchanged
        // tip reaches only what the parent's tips reach), less what the
        // parent's tips reach, all of them in `excluded`. Small blobs found
        // there also say that a pack is needed.
        if (repo.lfs != job::LfsMode::off) {
            auto scanned =
                scan_mirror(ctx.git, mirror, tips, excluded, lfs_head_commit(produced.head, produced.refs),
                            deadline.left(), ExcludedTips::present, *reader);
            if (!scanned)
                return fail(scanned.error());
            lfs_scan = std::move(*scanned);
        }
        // The bundle's revisions: the changed refs whose objects are new and,
        // of the parent's tips, only the negatives that matter (git/bundle_revs.hpp:
        // git takes seconds to de-duplicate 100,000 of them).
        auto chosen =
            git::incremental_bundle_revs(ctx.git, **reader, mirror, bundle_tips, excluded, deadline.left());
        if (!chosen)
            return fail(chosen.error());
        // Refs-only changes (deletions, rewinds, new refs on old commits) need no pack.
        write = (lfs_scan && lfs_scan->new_objects_seen) || chosen->new_objects;
        revs = std::move(chosen->revs);
    } else {
        const auto& refs_now = mirror_refs;
        for (const auto& [name, target] : produced.refs)
            revs.push_back(name);
        for (const auto& [name, target] : *refs_now)
            if (name.starts_with("refs/snapshotter/preserved/"))
                revs.push_back(name);
        if (head_tip)
            revs.emplace_back(git::k_head_ref);
        // Preserved tips the new chain cannot carry are dropped from the manifest.
        auto& preserved = produced.ledger.preserved;
        for (auto it = preserved.begin(); it != preserved.end();)
            it = refs_now->contains(preserved_ref_name(it->first)) ? std::next(it) : preserved.erase(it);
    }
    // The session is done: closed (and any error of git's reported) before the bundle.
    if (session)
        if (auto s = session->finish(); !s)
            return fail(s.error());
    if (write) {
        step = SteadyClock::now();
        // The bundle is committed only when its header lists the manifest's refs.
        const auto scope =
            plan.kind == SnapshotKind::full ? HeaderScope::every_ref : HeaderScope::changed_refs;
        auto check = [&](const git::BundleHeader& header) {
            return check_bundle_header(repo.name, header, produced.refs, scope);
        };
        auto bundle = store_bundle(
            ctx.storage, ctx.git, mirror, revs, layout::bundle_key(repo.name, plan.snapshot_id),
            plan.snapshot_id, deadline.left(), static_cast<std::uint64_t>(options.max_pack_bytes), check);
        if (!bundle)
            return fail(bundle.error());
        produced.timings_ms["bundle"] = elapsed_ms(step);
        produced.bundles.push_back(std::move(*bundle));
    }
    // Git LFS content of the new commits (snapshot/lfs_fetch.hpp, docs/lfs.md).
    if (auto s = add_lfs_from_mirror(m_ec, plan, input, mirror, produced, lfs_scan ? &*lfs_scan : nullptr);
        !s)
        return fail(s.error());
    return produced;
}

} // namespace

std::unique_ptr<Engine> make_cli_engine(const EngineContext& ec, CliListing listing) {
    return std::make_unique<CliEngine>(ec, listing);
}

} // namespace snapshotter::snapshot
