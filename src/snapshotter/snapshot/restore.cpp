// The restore action: rebuild snapshots as new bare repositories whose refs
// equal their manifests exactly, one repository into `target` or several
// into `target_dir/<name>.git`, and optionally push one to a remote. Each
// repository is built beside its target and renamed into place, so a failed
// restore leaves no half-made target.
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/create.hpp"
#include "snapshotter/snapshot/lfs_restore.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/selection.hpp"
#include "snapshotter/util/beneath.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <cstdio>
#include <fcntl.h>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Check that `target` is absent or an empty directory (and not a symbolic link).
Status check_target(const std::filesystem::path& target) {
    std::error_code ec;
    if (std::filesystem::is_symlink(std::filesystem::symlink_status(target, ec)))
        return fail(Error::conflict(
            fmt::format("{} is a symbolic link; restore never follows one", target.string())));
    auto empty = is_absent_or_empty_dir(target);
    if (!empty)
        return fail(empty.error());
    if (!*empty)
        return fail(Error::conflict(
            fmt::format("restore.target {} exists and is not an empty directory", target.string())));
    return {};
}

// The manifest `spec` selects for `repository`: as_of (the newest at or
// before it), an id or its unique beginning, or "latest". The repository
// must be one of `known` (a typo gets a suggestion).
Result<Manifest> pick_snapshot(const Context& ctx, const std::string& repository,
                               const std::vector<std::string>& known) {
    const auto& spec = ctx.job.restore;
    if (std::find(known.begin(), known.end(), repository) == known.end())
        return fail(unknown_repository(repository, known));
    std::string selector = spec.snapshot;
    if (spec.as_of) {
        auto ids = list_snapshot_ids(ctx.storage, repository);
        if (!ids)
            return fail(ids.error());
        auto id = newest_at_or_before(*ids, *spec.as_of);
        if (!id) {
            auto earliest = oldest_of(*ids);
            return fail(Error::not_found(
                earliest
                    ? fmt::format("{}: no snapshot at or before {} (the earliest is {} at {})", repository,
                                  spec.as_of_text, *earliest, format_rfc3339(*snapshot_id_time(*earliest)))
                    : fmt::format("{}: no snapshot at or before {}", repository, spec.as_of_text)));
        }
        selector = *id;
    } else if (selector != "latest" && !is_snapshot_id(selector)) {
        auto ids = list_snapshot_ids(ctx.storage, repository);
        if (!ids)
            return fail(ids.error());
        auto id = resolve_prefix(*ids, selector, repository);
        if (!id)
            return fail(id.error());
        selector = *id;
    }
    return resolve_snapshot(ctx.storage, repository, selector);
}

// What one repository's restore reports (the result of a single restore,
// an entry of a multi restore).
json entry_of(const Manifest& manifest, std::size_t refs, std::size_t preserved) {
    return {{"repository", manifest.repository},
            {"snapshot_id", manifest.snapshot_id},
            {"refs", refs},
            {"preserved", preserved},
            {"head", manifest.head ? json(*manifest.head) : json(nullptr)}};
}

// Build `manifest` in a scratch directory under `parent` and hand the
// finished repository and its refs to `place` (which moves it into its
// target). Returns the refs the repository ended with; what the entry gains
// (the Git LFS objects written) goes into `extra`.
using Place = std::function<Status(const std::filesystem::path&, const git::RefMap&)>;
Result<git::RefMap> build(const Context& ctx, const Manifest& manifest, const std::filesystem::path& parent,
                          json& extra, const Place& place) {
    const auto timeout = milliseconds{std::chrono::seconds{ctx.job.options.timeout_s}};
    auto scratch = TempDir::create("restore", parent);
    if (!scratch)
        return fail(scratch.error());
    auto building = scratch->path() / "repo.git";
    auto refs = materialize(ctx.storage, ctx.git, manifest, building, scratch->path(), timeout,
                            ctx.job.restore.preserved ? Preserved::yes : Preserved::no);
    if (!refs)
        return fail(refs.error().with_context(
            fmt::format("restore {}@{}", manifest.repository, manifest.snapshot_id)));
    if (auto s = write_lfs_objects(ctx.storage, manifest, building, extra); !s)
        return fail(s.error());
    if (auto s = place(building, *refs); !s)
        return fail(s.error());
    return refs;
}

// Move the built repository `building` to `target`; rename() replaces an
// empty directory atomically.
Status move_into(const std::filesystem::path& building, const std::filesystem::path& target) {
    if (std::rename(building.c_str(), target.c_str()) != 0)
        return fail(Error::storage(
            fmt::format("move the restored repository to {}: {}", target.string(), errno_text(errno))));
    return {};
}

// The ref namespaces a push of `local` (restored from `manifest`) covers:
// the manifest's ref patterns, the preserved tips' when the restore
// recreates them, and any ref of `local` no pattern matches by its name.
std::vector<std::string> push_namespaces(const Manifest& manifest, bool preserved, const git::RefMap& local) {
    std::vector<std::string> out = manifest.ref_patterns;
    if (preserved)
        out.emplace_back("refs/snapshotter/preserved/*");
    for (const auto& [name, target] : local)
        if (git::select_refs({{name, target}}, out).empty())
            out.push_back(name);
    return out;
}

// Push the refs `local` of repository `repo` (restored from `manifest`) to
// restore.push_to: refuse a remote that has refs unless force, push with
// forced refspecs per namespace (pruning the remote's refs there that the
// snapshot lacks), then check with ls-remote that the remote's refs in
// those namespaces equal `local` exactly. Adds the push's fields to `entry`.
Status push_restored(const Context& ctx, const Manifest& manifest, const std::filesystem::path& repo,
                     const git::RefMap& local, json& entry) {
    const auto& push = *ctx.job.restore.push_to;
    const auto timeout = milliseconds{std::chrono::seconds{ctx.job.options.timeout_s}};
    const git::Remote remote = remote_access(push.remote, ctx.job.options).remote;
    const std::string shown = redact_url(push.remote.url);
    const auto namespaces = push_namespaces(manifest, ctx.job.restore.preserved, local);

    // 1. The remote must be empty, unless force says its refs may go.
    auto before = ctx.git.ls_remote(remote, timeout);
    if (!before)
        return fail(before.error());
    if (!before->refs.empty() && !push.force)
        return fail(Error::conflict(fmt::format(
            "push_to {} is not empty ({} refs, e.g. {}); refusing to overwrite it (set push_to.force to make "
            "its refs equal the snapshot's, deleting the others)",
            shown, before->refs.size(), before->refs.begin()->first)));
    const auto doomed = git::select_refs(before->refs, namespaces);

    // 2. Push every namespace forced, with deletions of what the snapshot lacks.
    std::vector<std::string> refspecs;
    for (const auto& pattern : namespaces) {
        const bool glob = pattern.ends_with('*');
        if (glob || local.contains(pattern))
            refspecs.push_back(fmt::format("+{}:{}", pattern, pattern));
        else if (before->refs.contains(pattern))
            refspecs.push_back(":" + pattern);
    }
    std::size_t deleted = 0;
    for (const auto& [name, target] : doomed)
        deleted += local.contains(name) ? 0 : 1;
    if (!local.empty() || deleted > 0)
        if (auto s = ctx.git.push(repo, remote, refspecs, timeout); !s)
            return fail(s.error());

    // 3. Read the remote back: its refs in those namespaces must be the snapshot's.
    auto after = ctx.git.ls_remote(remote, timeout);
    if (!after)
        return fail(after.error());
    auto landed = git::select_refs(after->refs, namespaces);
    if (landed != local) {
        std::size_t missing = 0, extra = 0;
        for (const auto& [name, target] : local)
            missing += landed.contains(name) && landed.at(name) == target ? 0 : 1;
        for (const auto& [name, target] : landed)
            extra += local.contains(name) ? 0 : 1;
        return fail(Error::integrity(fmt::format(
            "push_to {}: after the push the remote's refs differ from the snapshot's ({} missing or "
            "different, {} extra)",
            shown, missing, extra)));
    }
    // 4. The snapshot's Git LFS objects to the remote's LFS server (lfs_restore.hpp).
    const auto access = remote_access(push.remote, ctx.job.options);
    if (auto s = push_lfs_objects(ctx.storage, manifest, push.remote, access.transport.username,
                                  access.transport.password, ctx.job.options, entry);
        !s)
        return fail(s.error());
    entry["pushed_to"] = shown;
    entry["pushed_refs"] = local.size();
    entry["deleted_on_remote"] = deleted;
    entry["remote_head"] = after->head ? json(*after->head) : json(nullptr);
    spdlog::info("pushed {}@{} to {}: {} refs, {} deleted", manifest.repository, manifest.snapshot_id, shown,
                 local.size(), deleted);
    return {};
}

// One repository into `target`, or pushed: today's single-repository result.
Outcome restore_single(const Context& ctx) {
    const auto& spec = ctx.job.restore;
    const bool has_target = !spec.target.empty();

    // 1. The target must be new or an empty directory.
    if (has_target)
        if (auto s = check_target(spec.target); !s)
            return {nullptr, s.error(), false};

    // 2. Find the manifest.
    auto known = list_repositories(ctx.storage);
    if (!known)
        return {nullptr, known.error(), false};
    auto manifest = pick_snapshot(ctx, spec.repository, *known);
    if (!manifest)
        return {nullptr, manifest.error(), false};
    if (ctx.dry_run) {
        json result = {{"action", "restore"},
                       {"dry_run", true},
                       {"repository", spec.repository},
                       {"snapshot_id", manifest->snapshot_id},
                       {"refs", manifest->refs.size()}};
        if (has_target)
            result["target"] = spec.target.string();
        if (spec.push_to)
            result["push_to"] = redact_url(spec.push_to->remote.url);
        return {result, std::nullopt, false};
    }

    // 3. Build it in a scratch directory beside the target (or a private one
    //    when it is only pushed), then move it in and push it.
    std::filesystem::path parent;
    if (has_target) {
        std::error_code ec;
        parent = spec.target.parent_path();
        std::filesystem::create_directories(parent, ec);
        // A killed restore's half-built repository goes first.
        sweep_abandoned_temp_dirs(parent);
    }
    ProgressScope shown(ctx.events, "restore", "repositories", 1);
    ctx.events.progress({.done = 0, .total = 1, .in_flight = 1, .bytes = 0, .current = spec.repository});
    json result;
    auto refs = build(ctx, *manifest, parent, result,
                      [&](const std::filesystem::path& building, const git::RefMap& local) -> Status {
                          if (spec.push_to) {
                              if (auto s = push_restored(ctx, *manifest, building, local, result); !s)
                                  return fail(s.error());
                          }
                          return has_target ? move_into(building, spec.target) : Status{};
                      });
    if (!refs)
        return {nullptr, refs.error(), false};
    json entry = entry_of(*manifest, manifest->refs.size(), refs->size() - manifest->refs.size());
    entry["action"] = "restore";
    if (has_target)
        entry["target"] = spec.target.string();
    if (result.is_object())
        entry.update(result);
    if (has_target)
        spdlog::info("restored {}@{} into {}", spec.repository, manifest->snapshot_id, spec.target.string());
    return {entry, std::nullopt, false};
}

// Where each of `names` goes below `dir`: dir/<name>.git, its parent
// directories made beneath `dir` without following a symbolic link. A name
// that cannot be placed fails alone (its error in `errors`).
enum class MakeDirs { no, yes };
std::vector<std::filesystem::path> place_targets(const std::filesystem::path& dir,
                                                 const std::vector<std::string>& names, MakeDirs make,
                                                 std::vector<std::optional<Error>>& errors) {
    std::vector<std::filesystem::path> targets(names.size());
    std::error_code ec;
    if (make == MakeDirs::yes)
        std::filesystem::create_directories(dir, ec);
    UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::set<std::string> all;
    for (const auto& n : names)
        all.insert(n + ".git");
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string rel = names[i] + ".git";
        // Storage names were validated when written; a hostile store is checked again.
        if (!job::is_valid_repository_name(names[i])) {
            errors[i] = Error::integrity(fmt::format("\"{}\" is not a valid repository name", names[i]));
            continue;
        }
        if (!root && make == MakeDirs::yes) {
            errors[i] = Error::storage(fmt::format("open {}: {}", dir.string(), errno_text(errno)));
            continue;
        }
        // One repository may not land inside another's ("a" and "a.git/b").
        for (auto slash = rel.find('/'); slash != std::string::npos && !errors[i];
             slash = rel.find('/', slash + 1))
            if (all.contains(rel.substr(0, slash)))
                errors[i] = Error::conflict(fmt::format("{}: its target would lie inside the restore of {}",
                                                        names[i], rel.substr(0, slash - 4)));
        if (errors[i])
            continue;
        auto slash = rel.rfind('/');
        if (slash != std::string::npos && make == MakeDirs::yes)
            if (auto made = make_dirs_beneath(root.get(), rel.substr(0, slash), false); !made) {
                errors[i] = Error::conflict(fmt::format(
                    "{}: cannot make {} beneath {}: {}", names[i], rel.substr(0, slash), dir.string(),
                    made.error() == ELOOP ? "a symbolic link is in the way" : errno_text(made.error())));
                continue;
            }
        targets[i] = dir / rel;
        if (auto s = check_target(targets[i]); !s)
            errors[i] = s.error();
    }
    return targets;
}

// Several repositories (or all) into target_dir: one entry each; one
// failing does not stop the others.
Outcome restore_several(const Context& ctx) {
    const auto& spec = ctx.job.restore;
    auto known = list_repositories(ctx.storage);
    if (!known)
        return {nullptr, known.error(), false};
    const std::vector<std::string>& names = spec.all ? *known : spec.repositories;
    if (names.empty())
        return {nullptr, Error::not_found("restore.repositories \"all\": the storage holds no repository"),
                false};

    // 1. Place every target (contained, absent or empty) before anything is built.
    std::vector<std::optional<Error>> errors(names.size());
    auto targets = place_targets(spec.target_dir, names, ctx.dry_run ? MakeDirs::no : MakeDirs::yes, errors);
    if (!ctx.dry_run)
        sweep_abandoned_temp_dirs(spec.target_dir);

    // 2. Restore each in turn.
    ProgressScope shown(ctx.events, "restore", "repositories", names.size());
    json entries = json::array();
    std::size_t ok = 0, failed = 0;
    std::optional<Error> first_failure;
    for (std::size_t i = 0; i < names.size(); ++i) {
        ctx.events.progress(
            {.done = i, .total = names.size(), .in_flight = 1, .bytes = 0, .current = names[i]});
        json entry;
        std::optional<Manifest> manifest;
        if (!errors[i]) {
            auto picked = pick_snapshot(ctx, names[i], *known);
            if (picked)
                manifest = std::move(*picked);
            else
                errors[i] = picked.error();
        }
        if (manifest && ctx.dry_run) {
            entry = {{"repository", names[i]},
                     {"status", "ok"},
                     {"snapshot_id", manifest->snapshot_id},
                     {"target", targets[i].string()},
                     {"refs", manifest->refs.size()}};
        } else if (manifest) {
            json extra;
            auto refs = build(ctx, *manifest, targets[i].parent_path(), extra,
                              [&](const std::filesystem::path& building, const git::RefMap&) {
                                  return move_into(building, targets[i]);
                              });
            if (refs) {
                entry = entry_of(*manifest, manifest->refs.size(), refs->size() - manifest->refs.size());
                if (extra.is_object())
                    entry.update(extra);
                entry["status"] = "ok";
                entry["target"] = targets[i].string();
                spdlog::info("restored {}@{} into {}", names[i], manifest->snapshot_id, targets[i].string());
            } else {
                errors[i] = refs.error();
            }
        }
        if (errors[i]) {
            const Error& e = *errors[i];
            spdlog::error("{}: {}", names[i], e.message);
            entry = {{"repository", names[i]},
                     {"status", "failed"},
                     {"error", error_kind_name(e.kind)},
                     {"message", redact(e.message)}};
            if (!targets[i].empty())
                entry["target"] = targets[i].string();
            if (!first_failure)
                first_failure = Error{e.kind, redact(e.message)};
            ++failed;
        } else {
            ++ok;
        }
        entries.push_back(std::move(entry));
    }
    ctx.events.progress(
        {.done = names.size(), .total = names.size(), .in_flight = 0, .bytes = 0, .current = ""});

    json result = {{"action", "restore"},
                   {"dry_run", ctx.dry_run},
                   {"target_dir", spec.target_dir.string()},
                   {"restored", std::move(entries)},
                   {"summary", {{"total", names.size()}, {"ok", ok}, {"failed", failed}}}};
    if (spec.as_of)
        result["as_of"] = spec.as_of_text;
    Outcome out{std::move(result), std::nullopt, false};
    if (failed > 0 && ok == 0)
        out.error = failed == 1
                        ? *first_failure
                        : Error{first_failure->kind, fmt::format("all {} repositories failed; first: {}",
                                                                 failed, first_failure->message)};
    else if (failed > 0)
        out.partial = true;
    return out;
}

} // namespace

Outcome run_restore(const Context& ctx) {
    return ctx.job.restore.several() ? restore_several(ctx) : restore_single(ctx);
}

} // namespace snapshotter::snapshot
