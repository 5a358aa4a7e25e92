// The snapshot action: for each repository, list the remote's refs, decide
// between unchanged / empty / full, and publish in commit order: bundle,
// then manifest, then the latest pointer.
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

nlohmann::json bundle_json(const BundleInfo& b) { return {{"key", b.key}, {"size", b.size}, {"sha256", b.sha256}}; }

// Stream `git bundle create` of `refs` from `mirror` into storage under
// `key`, hashing on the way; the object is committed only when git succeeded.
Result<BundleInfo> write_bundle(const Context& ctx, const std::filesystem::path& mirror, const git::RefMap& refs,
                                const std::string& key, const std::string& snapshot_id, const Deadline& deadline) {
    auto writer = ctx.storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    Sha256 hash;
    std::uint64_t size = 0;
    std::vector<std::string> names;
    for (const auto& [name, target] : refs)
        names.push_back(name);
    auto streamed = ctx.git.bundle_create(
        mirror, names,
        [&](std::span<const std::byte> chunk) -> Status {
            hash.update(chunk);
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
    return BundleInfo{snapshot_id, key, size, hash.hex_digest(), {}};
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

    // 2. Compare with the previous snapshot; a broken history means a full one.
    std::optional<Manifest> previous;
    if (auto latest = read_latest_manifest(ctx.storage, repo.name); latest) {
        previous = std::move(*latest);
    } else if (latest.error().kind == ErrorKind::Storage) {
        return fail(latest.error());
    } else {
        spdlog::warn("{}: previous snapshot unreadable ({}); taking a full snapshot", repo.name,
                     latest.error().message);
    }
    bool unchanged = previous && previous->refs == selected && previous->head == manifest.head &&
                     previous->object_format == manifest.object_format && previous->ref_patterns == repo.refs;
    if (unchanged) {
        // Reuse the previous chain only if all of it is still there.
        for (const auto& bundle : previous->bundles) {
            auto info = ctx.storage.head(bundle.key);
            if (!info)
                return fail(info.error());
            if (!*info || (*info)->size != bundle.size) {
                spdlog::warn("{}: bundle {} of the previous snapshot is missing or truncated; taking a full snapshot",
                             repo.name, bundle.key);
                unchanged = false;
                break;
            }
        }
    }
    if (previous)
        manifest.parent = previous->snapshot_id;

    std::string plan = unchanged ? "unchanged" : selected.empty() ? "empty" : "full";
    if (ctx.dry_run) {
        return RepoOutcome{unchanged ? "unchanged" : "ok",
                           {{"plan", plan}, {"refs", selected.size()}, {"snapshot_id", nullptr}}};
    }

    if (unchanged) {
        // 3a. Nothing moved: a manifest that points at the same chain.
        manifest.kind = "unchanged";
        manifest.refs = previous->refs;
        manifest.bundles = previous->bundles;
    } else if (selected.empty()) {
        // 3b. No refs: a manifest and no bundle (a bundle cannot be empty).
        manifest.kind = "empty";
    } else {
        // 3c. Fetch into the cached mirror, then stream a bundle of exactly
        // the selected refs into storage.
        manifest.kind = "full";
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
        auto refs = ctx.git.local_refs(mirror);
        if (!refs)
            return fail(refs.error());
        manifest.refs = git::select_refs(*refs, repo.refs);
        if (manifest.refs.empty()) {
            manifest.kind = "empty";
        } else {
            step = SteadyClock::now();
            auto bundle = write_bundle(ctx, mirror, manifest.refs,
                                       layout::bundle_key(repo.name, manifest.snapshot_id), manifest.snapshot_id,
                                       deadline);
            if (!bundle)
                return fail(bundle.error());
            manifest.timings_ms["bundle"] = elapsed_ms(step);
            manifest.bundles.push_back(std::move(*bundle));
        }
    }
    manifest.timings_ms["total"] = elapsed_ms(start);

    // 4. Publish: manifest (never overwritten), then the latest pointer.
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

    nlohmann::json detail = {{"snapshot_id", manifest.snapshot_id},
                   {"kind", manifest.kind},
                   {"refs", manifest.refs.size()},
                   {"bundle", manifest.bundles.empty() ? nlohmann::json(nullptr) : bundle_json(manifest.bundles.back())}};
    spdlog::info("{}: {} snapshot {} ({} refs)", repo.name, manifest.kind, manifest.snapshot_id, manifest.refs.size());
    std::uint64_t written = manifest.kind == "full" ? manifest.bundles.back().size : 0;
    return RepoOutcome{unchanged ? "unchanged" : "ok", std::move(detail), written};
}

} // namespace snapshotter::snapshot
