// The snapshot of one repository: list the remote's refs, decide between
// unchanged / empty / incremental / full, record how every ref moved, and
// publish in commit order: bundle, then manifest, then the latest pointer.
#include "snapshotter/snapshot/create.hpp"

#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

class Deadline {
  public:
    explicit Deadline(int seconds) : m_end(SteadyClock::now() + std::chrono::seconds{seconds}) {}
    // Time left, at least one second so a last step can report its error.
    [[nodiscard]] milliseconds left() const {
        auto rest = std::chrono::duration_cast<milliseconds>(m_end - SteadyClock::now());
        return std::max(rest, milliseconds{1000});
    }

  private:
    SteadyClock::time_point m_end;
};

git::Remote remote_of(const job::Repository& repo, const job::Options& options) {
    git::Remote remote{repo.url, {options.allow_http, options.allow_file}, "", ""};
    if (repo.credentials) {
        remote.username = repo.credentials->username;
        remote.password = job::process_env(repo.credentials->token_env).value_or("");
        register_secret(remote.password);
    }
    return remote;
}

nlohmann::json bundle_json(const BundleInfo& b) {
    return {{"key", b.key}, {"size", b.size}, {"sha256", b.sha256}, {"prerequisites", b.prerequisites.size()}};
}

// Collects the prerequisite lines ("-<oid>") of a bundle header as it streams by.
class HeaderScanner {
  public:
    void feed(std::span<const std::byte> chunk) {
        if (m_done)
            return;
        m_header.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        auto end = m_header.find("\n\n");
        if (end == std::string::npos && m_header.size() < (std::size_t{64} << 20))
            return;
        m_done = true;
        std::string_view text(m_header.data(), end == std::string::npos ? m_header.size() : end);
        while (!text.empty()) {
            auto nl = text.find('\n');
            auto line = text.substr(0, nl);
            if (line.starts_with('-'))
                m_prerequisites.emplace_back(line.substr(1, line.find(' ') == std::string_view::npos
                                                                ? std::string_view::npos
                                                                : line.find(' ') - 1));
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        }
        m_header.clear();
    }
    [[nodiscard]] const std::vector<std::string>& prerequisites() const { return m_prerequisites; }

  private:
    std::string m_header;
    bool m_done = false;
    std::vector<std::string> m_prerequisites;
};

// Stream `git bundle create` of `revs` from `mirror` into storage under
// `key`, hashing on the way; the object is committed only when git succeeded.
Result<BundleInfo> write_bundle(const Context& ctx, const std::filesystem::path& mirror,
                                const std::vector<std::string>& revs, const std::string& key,
                                const std::string& snapshot_id, const Deadline& deadline) {
    auto writer = ctx.storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    Sha256 hash;
    HeaderScanner header;
    std::uint64_t size = 0;
    auto streamed = ctx.git.bundle_create(
        mirror, revs,
        [&](std::span<const std::byte> chunk) -> Status {
            hash.update(chunk);
            header.feed(chunk);
            size += chunk.size();
            return (*writer)->write(chunk);
        },
        deadline.left());
    if (!streamed) {
        (*writer)->abort();
        return fail(streamed.error());
    }
    if (auto s = (*writer)->commit(); !s)
        return fail(s.error());
    return BundleInfo{snapshot_id, key, size, hash.hex_digest(), header.prerequisites()};
}

// How each ref moved from `previous` to `current`; `mirror` answers ancestry.
Result<std::map<std::string, RefChange>> ledger(const Context& ctx, const std::filesystem::path& mirror,
                                                const git::RefMap& previous, const git::RefMap& current) {
    std::map<std::string, RefChange> changes;
    std::vector<std::string> old_tips;
    for (const auto& [name, target] : previous)
        old_tips.push_back(target.oid);
    auto present = ctx.git.object_types(mirror, old_tips);
    if (!present)
        return fail(present.error());
    for (const auto& [name, target] : current) {
        auto it = previous.find(name);
        if (it == previous.end()) {
            changes[name] = {"created", "", target.oid};
            continue;
        }
        if (it->second.oid == target.oid)
            continue;
        // After a fetch of every current ref, an old tip missing from the
        // mirror cannot be an ancestor of any of them.
        bool forward = false;
        if (present->contains(it->second.oid)) {
            auto a = ctx.git.is_ancestor(mirror, it->second.oid, target.oid);
            if (!a)
                return fail(a.error());
            forward = *a;
        }
        changes[name] = {forward ? "fast_forward" : "rewritten", it->second.oid, target.oid};
    }
    for (const auto& [name, target] : previous)
        if (!current.contains(name))
            changes[name] = {"deleted", target.oid, ""};
    return changes;
}

// Whether the next snapshot after `previous` may be an incremental one.
bool chain_allows_incremental(const Manifest& previous, const job::Options& options, const std::string& format) {
    if (previous.bundles.empty() || previous.object_format != format)
        return false;
    if (static_cast<int>(previous.bundles.size()) >= options.full_every)
        return false;
    std::uint64_t incrementals = 0;
    for (std::size_t i = 1; i < previous.bundles.size(); ++i)
        incrementals += previous.bundles[i].size;
    return static_cast<double>(incrementals) <= options.full_size_ratio * static_cast<double>(previous.bundles[0].size);
}

// True when every bundle of `previous`'s chain is still in storage.
Result<bool> chain_intact(const Context& ctx, const Manifest& previous) {
    for (const auto& bundle : previous.bundles) {
        auto info = ctx.storage.head(bundle.key);
        if (!info)
            return fail(info.error());
        if (!*info || (*info)->size != bundle.size) {
            spdlog::warn("{}: bundle {} of snapshot {} is missing or truncated; taking a full snapshot",
                         previous.repository, bundle.key, previous.snapshot_id);
            return false;
        }
    }
    return true;
}

} // namespace

Result<RepoOutcome> snapshot_repository(const Context& ctx, const job::Repository& repo) {
    const auto& options = ctx.job.options;
    const auto start = SteadyClock::now();
    const Deadline deadline(options.timeout_s);
    const auto remote = remote_of(repo, options);
    Manifest manifest;
    manifest.snapshot_id = new_snapshot_id();
    manifest.repository = repo.name;
    manifest.source_url = redact_url(repo.url);
    manifest.created_at = format_rfc3339(Clock::now());
    manifest.job_id = ctx.job.job_id;
    manifest.engine = "cli";
    manifest.git_version = ctx.git.version();
    manifest.ref_patterns = repo.refs;

    // 1. List the remote's refs: the only network call for an unchanged repository.
    auto step = SteadyClock::now();
    auto state = ctx.git.ls_remote(remote, deadline.left());
    if (!state)
        return fail(state.error());
    manifest.timings_ms["ls_remote"] = elapsed_ms(step);
    manifest.head = state->head;
    auto selected = git::select_refs(state->refs, repo.refs);
    if (!state->refs.empty()) {
        manifest.object_format = git::object_format_of(state->refs.begin()->second.oid);
    } else {
        auto probe = ctx.git.probe_empty_remote(remote, deadline.left());
        if (!probe)
            return fail(probe.error());
        manifest.object_format = probe->first;
        manifest.head = probe->second;
    }
    if (manifest.object_format.empty())
        return fail(Error::git(fmt::format("{}: unrecognised object id length", repo.name)));

    // 2. The previous snapshot; a missing, corrupt or broken one means a full snapshot.
    std::optional<Manifest> previous;
    if (auto latest = read_latest_manifest(ctx.storage, repo.name); latest) {
        previous = std::move(*latest);
    } else if (latest.error().kind == ErrorKind::Storage) {
        return fail(latest.error());
    } else {
        spdlog::warn("{}: previous snapshot unreadable ({}); taking a full snapshot", repo.name,
                     latest.error().message);
    }
    if (previous) {
        auto intact = chain_intact(ctx, *previous);
        if (!intact)
            return fail(intact.error());
        if (!*intact)
            previous.reset();
    }
    if (previous)
        manifest.parent = previous->snapshot_id;
    const bool unchanged = previous && previous->refs == selected && previous->head == manifest.head &&
                           previous->object_format == manifest.object_format && previous->ref_patterns == repo.refs;
    const bool incremental_allowed =
        previous && chain_allows_incremental(*previous, options, manifest.object_format);

    if (ctx.dry_run) {
        std::string plan = unchanged ? "unchanged" : selected.empty() ? "empty" : incremental_allowed ? "incremental" : "full";
        return RepoOutcome{unchanged ? "unchanged" : "ok",
                           {{"plan", plan}, {"refs", selected.size()}, {"snapshot_id", nullptr}}};
    }

    int rewritten = 0, deleted = 0;
    if (unchanged) {
        // 3a. Nothing moved: a manifest that points at the same chain.
        manifest.kind = "unchanged";
        manifest.refs = previous->refs;
        manifest.bundles = previous->bundles;
        manifest.preserved = previous->preserved;
    } else if (selected.empty()) {
        // 3b. No refs: a manifest and no bundle (a bundle cannot be empty).
        manifest.kind = "empty";
        if (previous)
            for (const auto& [name, target] : previous->refs) {
                manifest.changes[name] = {"deleted", target.oid, ""};
                ++deleted;
            }
    } else {
        // 3c. Fetch into the cached mirror (one writer per mirror at a time).
        auto mirrors = options.cache_dir / "mirrors";
        auto mirror = mirrors / (layout::repo_key(repo.name) + ".git");
        auto lock = FileLock::acquire(mirrors / (layout::repo_key(repo.name) + ".lock"));
        if (!lock)
            return fail(lock.error());
        step = SteadyClock::now();
        // An exact ref the remote does not have would fail the fetch: ask only for those it listed.
        std::vector<std::string> patterns;
        for (const auto& p : repo.refs)
            if (p.ends_with('*') || selected.contains(p))
                patterns.push_back(p);
        if (auto s = ctx.git.update_mirror(mirror, manifest.object_format, remote, patterns, deadline.left()); !s)
            return fail(s.error());
        manifest.timings_ms["fetch"] = elapsed_ms(step);
        auto mirror_refs = ctx.git.local_refs(mirror);
        if (!mirror_refs)
            return fail(mirror_refs.error());
        manifest.refs = git::select_refs(*mirror_refs, repo.refs);

        // 4. The ledger: rewritten and deleted tips stay restorable as preserved refs.
        if (previous) {
            auto changes = ledger(ctx, mirror, previous->refs, manifest.refs);
            if (!changes)
                return fail(changes.error());
            manifest.changes = std::move(*changes);
            manifest.preserved = previous->preserved;
            git::RefMap keep;
            for (const auto& [name, c] : manifest.changes) {
                if (c.change != "rewritten" && c.change != "deleted")
                    continue;
                (c.change == "rewritten" ? rewritten : deleted) += 1;
                auto key = manifest.snapshot_id + "/" + name;
                manifest.preserved[key] = c.old_oid;
                keep[preserved_ref_name(key)] = {c.old_oid, ""};
                spdlog::warn("{}: ref {} was {} (old tip {})", repo.name, name, c.change, c.old_oid);
            }
            // Keep the old tips reachable in the mirror so later full bundles carry them.
            std::vector<std::string> oids;
            for (const auto& [name, target] : keep)
                oids.push_back(target.oid);
            auto present = ctx.git.object_types(mirror, oids);
            if (!present)
                return fail(present.error());
            for (auto it = keep.begin(); it != keep.end();)
                it = present->contains(it->second.oid) ? std::next(it) : keep.erase(it);
            if (auto s = ctx.git.add_refs(mirror, keep); !s)
                return fail(s.error());
        }

        // 5. Full or incremental bundle, streamed into storage.
        std::vector<std::string> revs;
        bool write = true;
        if (incremental_allowed) {
            manifest.kind = "incremental";
            manifest.bundles = previous->bundles;
            std::vector<std::string> tips, old_tips;
            for (const auto& [name, target] : manifest.refs) {
                auto it = previous->refs.find(name);
                if (it == previous->refs.end() || it->second.oid != target.oid) {
                    revs.push_back(name);
                    tips.push_back(target.oid);
                }
            }
            // The previous tips, peeled to commits, are what the new bundle may assume.
            for (const auto& [name, target] : previous->refs)
                old_tips.push_back(target.peeled.empty() ? target.oid : target.peeled);
            auto present = ctx.git.object_types(mirror, old_tips);
            if (!present)
                return fail(present.error());
            std::vector<std::string> excluded;
            for (const auto& [oid, type] : *present)
                if (type == "commit")
                    excluded.push_back(oid);
            auto fresh = ctx.git.has_new_objects(mirror, tips, excluded, deadline.left());
            if (!fresh)
                return fail(fresh.error());
            // Refs-only changes (deletions, rewinds, new refs on old commits) need no pack.
            write = !tips.empty() && *fresh;
            for (const auto& oid : excluded)
                revs.push_back("^" + oid);
        } else {
            manifest.kind = "full";
            manifest.bundles.clear();
            for (const auto& [name, target] : manifest.refs)
                revs.push_back(name);
            auto refs_now = ctx.git.local_refs(mirror);
            if (!refs_now)
                return fail(refs_now.error());
            for (const auto& [name, target] : *refs_now)
                if (name.starts_with("refs/snapshotter/preserved/"))
                    revs.push_back(name);
            // Preserved tips the new chain cannot carry are dropped from the manifest.
            for (auto it = manifest.preserved.begin(); it != manifest.preserved.end();)
                it = refs_now->contains(preserved_ref_name(it->first)) ? std::next(it) : manifest.preserved.erase(it);
        }
        if (write) {
            step = SteadyClock::now();
            auto bundle = write_bundle(ctx, mirror, revs, layout::bundle_key(repo.name, manifest.snapshot_id),
                                       manifest.snapshot_id, deadline);
            if (!bundle)
                return fail(bundle.error());
            manifest.timings_ms["bundle"] = elapsed_ms(step);
            manifest.bundles.push_back(std::move(*bundle));
        }
    }
    manifest.timings_ms["total"] = elapsed_ms(start);

    // 6. Publish: manifest (never overwritten), then the latest pointer.
    auto text = serialize_manifest(manifest);
    if (!text)
        return fail(text.error());
    auto manifest_key = layout::manifest_key(repo.name, manifest.snapshot_id);
    if (auto s = ctx.storage.put(manifest_key, *text, Overwrite::no); !s)
        return fail(s.error());
    if (auto s = ctx.storage.put(layout::latest_key(repo.name), serialize_latest(manifest.snapshot_id, manifest_key),
                                 Overwrite::yes);
        !s)
        return fail(s.error());

    const bool wrote = !manifest.bundles.empty() && manifest.bundles.back().snapshot_id == manifest.snapshot_id;
    nlohmann::json detail = {{"snapshot_id", manifest.snapshot_id},
                             {"kind", manifest.kind},
                             {"refs", manifest.refs.size()},
                             {"refs_rewritten", rewritten},
                             {"refs_deleted", deleted},
                             {"bundle", wrote ? bundle_json(manifest.bundles.back()) : nlohmann::json(nullptr)}};
    spdlog::info("{}: {} snapshot {} ({} refs)", repo.name, manifest.kind, manifest.snapshot_id, manifest.refs.size());
    return RepoOutcome{unchanged ? "unchanged" : "ok", std::move(detail), wrote ? manifest.bundles.back().size : 0,
                       rewritten, deleted};
}

} // namespace snapshotter::snapshot
