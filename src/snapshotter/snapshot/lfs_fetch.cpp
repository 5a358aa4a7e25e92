#include "snapshotter/snapshot/lfs_fetch.hpp"

#include "snapshotter/lfs/config.hpp"
#include "snapshotter/lfs/pointer.hpp"
#include "snapshotter/snapshot/engine.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

namespace {

bool by_oid(const LfsObject& a, const LfsObject& b) {
    return a.oid < b.oid;
}

// `objects` sorted by oid with one entry per oid.
void sort_unique(std::vector<LfsObject>& objects) {
    std::sort(objects.begin(), objects.end(), [](const LfsObject& a, const LfsObject& b) {
        return std::tie(a.oid, a.size) < std::tie(b.oid, b.size);
    });
    objects.erase(std::unique(objects.begin(), objects.end(),
                              [](const LfsObject& a, const LfsObject& b) { return a.oid == b.oid; }),
                  objects.end());
}

// The missing reason for a per-object error `code` of the batch answer.
std::string reason_of_error(int code, std::string_view message) {
    if (code == 404 || code == 410)
        return "not_found";
    return redact(fmt::format("error: HTTP {} {}", code, message));
}

// The warnings a snapshot reports for `missing`: one per object, at most ten, then a count.
std::vector<std::string> missing_warnings(std::string_view repository,
                                          const std::vector<LfsMissing>& missing) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < missing.size() && i < 10; ++i)
        out.push_back(fmt::format("LFS object {} ({} bytes) is not stored: {}", missing[i].oid,
                                  missing[i].size, missing[i].reason));
    if (missing.size() > 10)
        out.push_back(fmt::format("... and {} more LFS objects are not stored", missing.size() - 10));
    for (const auto& w : out)
        spdlog::warn("{}: {}", repository, w);
    return out;
}

// Which of `candidates` storage already holds at their size, by one HEAD each
// or, for many, one listing of the repository's LFS prefix. Objects stored
// at another size (a torn write of another tool) come back in `wrong_size`.
Result<std::set<std::string>> stored_among(storage::Storage& storage, std::string_view repository,
                                           const std::vector<LfsObject>& candidates,
                                           std::set<std::string>& wrong_size) {
    std::set<std::string> stored;
    if (candidates.size() > k_lfs_inline_max) {
        auto listed = storage.list(layout::lfs_prefix(repository));
        if (!listed)
            return fail(listed.error());
        std::map<std::string, std::uint64_t> sizes;
        for (const auto& info : *listed)
            if (auto oid = layout::lfs_oid_of_key(info.key, repository))
                sizes.emplace(std::move(*oid), info.size);
        for (const auto& c : candidates)
            if (auto it = sizes.find(c.oid); it != sizes.end())
                (it->second == c.size ? stored : wrong_size).insert(c.oid);
        return stored;
    }
    for (const auto& c : candidates) {
        auto info = storage.head(layout::lfs_object_key(repository, c.oid));
        if (!info)
            return fail(info.error());
        if (*info)
            ((*info)->size == c.size ? stored : wrong_size).insert(c.oid);
    }
    return stored;
}

} // namespace

std::vector<LfsObject> pointers_in(const std::vector<std::string>& blobs) {
    std::vector<LfsObject> out;
    for (const auto& blob : blobs)
        if (auto pointer = lfs::parse_pointer(blob))
            out.push_back({std::move(pointer->oid), pointer->size});
    sort_unique(out);
    return out;
}

Result<LfsScan> scan_mirror(const git::GitApi& git, const std::filesystem::path& mirror,
                            const std::vector<std::string>& tips, const std::vector<std::string>& excluded,
                            const std::string& head_commit, std::chrono::milliseconds timeout,
                            ExcludedTips check, git::CatFileSession* objects) {
    std::optional<git::CatFileSession> own;
    if (objects == nullptr) {
        auto started = git::CatFileSession::start(git, mirror, timeout);
        if (!started)
            return fail(started.error());
        objects = &own.emplace(std::move(*started));
    }
    LfsScan scan;
    // Old tips the mirror lacks (a cache made afresh) cannot be excluded by rev-list.
    std::vector<std::string> present;
    if (check == ExcludedTips::present) {
        present = excluded;
    } else if (!excluded.empty()) {
        auto types = git::object_types(*objects, excluded);
        if (!types)
            return fail(types.error());
        for (const auto& oid : excluded)
            if (types->contains(oid))
                present.push_back(oid);
    }
    // The new objects as git lists them (larger blobs left out by git),
    // their types and sizes, then the contents of the blobs of pointer size,
    // a batch at a time: only the pointers found are kept.
    auto on_objects = [&](const std::vector<std::string>& oids) -> Status {
        auto infos = objects->info(oids);
        if (!infos)
            return fail(infos.error());
        std::vector<std::string> wanted;
        for (std::size_t i = 0; i < oids.size(); ++i) {
            const auto& info = (*infos)[i];
            if (info && info->type == "blob" && info->size >= lfs::k_min_pointer_bytes &&
                info->size <= lfs::k_max_pointer_bytes)
                wanted.push_back(oids[i]);
        }
        auto blobs = objects->read_many(wanted, lfs::k_max_pointer_bytes);
        if (!blobs)
            return fail(blobs.error());
        std::vector<std::string> contents;
        for (auto& blob : *blobs)
            if (blob)
                contents.push_back(std::move(blob->content));
        scan.new_objects_seen = scan.new_objects_seen || !contents.empty();
        auto found = pointers_in(contents);
        scan.pointers.insert(scan.pointers.end(), found.begin(), found.end());
        return {};
    };
    if (auto s = git.list_objects(mirror, tips, present, lfs::k_max_pointer_bytes, on_objects, timeout); !s)
        return fail(s.error());
    sort_unique(scan.pointers);
    if (!head_commit.empty()) {
        auto attributes = git::blob_at(*objects, head_commit, ".gitattributes", std::size_t{1} << 20);
        if (!attributes)
            return fail(attributes.error());
        scan.gitattributes_lfs = *attributes && (*attributes)->find("filter=lfs") != std::string::npos;
        // lfs.url read here as `git config --blob` reads it (lfs/config.hpp), one git child fewer.
        auto config = git::blob_at(*objects, head_commit, ".lfsconfig", lfs::k_max_lfsconfig_bytes);
        if (!config)
            return fail(config.error());
        if (*config) {
            auto url = lfs::lfs_url_in_config(**config);
            if (url)
                scan.lfsconfig_url = *url;
            else
                scan.warnings.push_back(
                    fmt::format("HEAD's .lfsconfig is not a config git reads: {}", url.error().message));
        }
    }
    if (own)
        if (auto s = own->finish(); !s)
            return fail(s.error());
    return scan;
}

bool lfs_wanted(job::LfsMode mode, const LfsScan& scan, const std::optional<LfsSet>& parent) {
    switch (mode) {
    case job::LfsMode::off:
        return false;
    case job::LfsMode::on:
        return true;
    case job::LfsMode::automatic:
        break;
    }
    return !scan.pointers.empty() || scan.gitattributes_lfs || (parent && parent->count > 0);
}

Result<LfsOutcome> store_lfs_objects(storage::Storage& storage, std::string_view repository,
                                     lfs::Client* client, const std::string& no_server,
                                     std::vector<LfsObject> needed,
                                     const std::vector<LfsObject>& known_stored) {
    sort_unique(needed);
    LfsOutcome outcome;
    // 1. What storage may lack: the needed objects the parent did not store.
    std::vector<LfsObject> candidates;
    std::set_difference(needed.begin(), needed.end(), known_stored.begin(), known_stored.end(),
                        std::back_inserter(candidates), by_oid);
    outcome.already_stored = needed.size() - candidates.size();
    // 2. Ask storage once for them.
    std::set<std::string> wrong_size;
    auto stored = stored_among(storage, repository, candidates, wrong_size);
    if (!stored)
        return fail(stored.error());
    outcome.already_stored += stored->size();
    std::vector<lfs::Pointer> wanted;
    for (const auto& c : candidates)
        if (!stored->contains(c.oid))
            wanted.push_back({c.oid, c.size});

    // 3. Fetch the rest in batches; what cannot be had is recorded, not fatal.
    std::vector<LfsMissing> missing;
    auto download = [&](const lfs::Action& action, const lfs::Pointer& object) -> Status {
        const std::string key = layout::lfs_object_key(repository, object.oid);
        const auto overwrite = wrong_size.contains(object.oid) ? Overwrite::yes : Overwrite::no;
        auto s = client->download(action, object, [&] { return storage.create(key, overwrite); });
        if (s) {
            ++outcome.downloaded_objects;
            outcome.downloaded_bytes += object.size;
            return {};
        }
        const Error& e = s.error();
        if (e.kind == ErrorKind::Conflict) // stored meanwhile by another run: the same bytes
            return {};
        if (e.kind == ErrorKind::Storage || e.kind == ErrorKind::Interrupted || e.kind == ErrorKind::Timeout)
            return s;
        missing.push_back({object.oid, object.size,
                           e.kind == ErrorKind::Integrity ? std::string("hash_mismatch")
                                                          : redact(fmt::format("error: {}", e.message))});
        return {};
    };
    for (std::size_t begin = 0; begin < wanted.size(); begin += lfs::k_batch_size) {
        std::span<const lfs::Pointer> chunk(wanted.data() + begin,
                                            std::min(lfs::k_batch_size, wanted.size() - begin));
        if (client == nullptr) {
            for (const auto& o : chunk)
                missing.push_back({o.oid, o.size, redact(fmt::format("error: {}", no_server))});
            continue;
        }
        auto answers = client->batch(lfs::Operation::download, chunk);
        if (!answers) {
            for (const auto& o : chunk)
                missing.push_back({o.oid, o.size, redact(fmt::format("error: {}", answers.error().message))});
            continue;
        }
        std::vector<lfs::Pointer> expired;
        for (const auto& a : *answers) {
            if (a.error_code != 0)
                missing.push_back(
                    {a.object.oid, a.object.size, reason_of_error(a.error_code, a.error_message)});
            else if (lfs::is_expired(*a.download, current_time()))
                expired.push_back(a.object);
            else if (auto s = download(*a.download, a.object); !s)
                return fail(s.error());
        }
        // Actions that expired before their turn: ask once more, then use what comes.
        if (!expired.empty()) {
            auto again = client->batch(lfs::Operation::download, expired);
            for (const auto& o : expired)
                if (!again)
                    missing.push_back(
                        {o.oid, o.size, redact(fmt::format("error: {}", again.error().message))});
            if (again)
                for (const auto& a : *again) {
                    if (a.error_code != 0)
                        missing.push_back(
                            {a.object.oid, a.object.size, reason_of_error(a.error_code, a.error_message)});
                    else if (auto s = download(*a.download, a.object); !s)
                        return fail(s.error());
                }
        }
    }
    outcome.found = needed.size();
    outcome.warnings = missing_warnings(repository, missing);
    auto set = make_lfs_set(storage, repository, std::move(needed), std::move(missing));
    if (!set)
        return fail(set.error());
    outcome.set = std::move(*set);
    return outcome;
}

Status add_lfs(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input, const LfsScan& scan,
               Produced& produced) {
    const auto& repo = ec.repo;
    const auto& options = ec.ctx.job.options;
    const std::optional<LfsSet> parent_set = input.previous ? input.previous->lfs : std::nullopt;
    if (!lfs_wanted(repo.lfs, scan, parent_set))
        return {};
    LfsOutcome outcome;
    std::vector<std::string> warnings = scan.warnings;
    for (const auto& w : warnings)
        spdlog::warn("{}: {}", repo.name, w);
    if (!scan.scanned) {
        warnings.push_back(
            fmt::format("LFS pointers of the new commits were not looked for: {}", scan.not_scanned));
        spdlog::warn("{}: {}", repo.name, warnings.back());
    }
    // 1. The needed set: cumulative over the chain (the parent's set, its
    //    missing objects asked for again, plus what the new commits point to).
    //    A full snapshot scanned every commit, so it starts afresh.
    const bool full = (produced.replanned ? *produced.replanned : plan).kind == SnapshotKind::full;
    std::vector<LfsObject> parent_objects, known_stored;
    if (input.previous && parent_set) {
        auto objects = lfs_objects_of(ec.ctx.storage, *input.previous);
        if (!objects) {
            warnings.push_back(
                fmt::format("the previous snapshot's LFS set is unreadable ({}); it is not carried on",
                            redact(objects.error().message)));
            spdlog::warn("{}: {}", repo.name, warnings.back());
        } else {
            parent_objects = std::move(*objects);
            std::set<std::string> parent_missing;
            for (const auto& m : parent_set->missing)
                parent_missing.insert(m.oid);
            for (const auto& o : parent_objects)
                if (!parent_missing.contains(o.oid))
                    known_stored.push_back(o);
        }
    }
    std::vector<LfsObject> needed = scan.pointers;
    if (!full || !scan.scanned)
        needed.insert(needed.end(), parent_objects.begin(), parent_objects.end());

    // 2. The server: the payload's lfs_url, HEAD's .lfsconfig, or git-lfs's derivation.
    std::unique_ptr<lfs::Client> client;
    std::string no_server;
    auto server = lfs::choose_lfs_server(repo.url, repo.lfs_url, scan.lfsconfig_url,
                                         {options.allow_http, options.allow_file});
    if (server) {
        lfs::Endpoint endpoint{server->url, "", "", options.http.follow_redirects, options.allow_http};
        if (server->credentials) {
            endpoint.username = ec.remote.transport.username;
            endpoint.password = ec.remote.transport.password;
        }
        outcome.server = redact_url(server->url);
        outcome.server_source = std::string(lfs::to_string(server->source));
        client = std::make_unique<lfs::Client>(std::move(endpoint));
    } else {
        no_server = redact(server.error().message);
    }

    // 3. Store what storage lacks, and record the set.
    auto stored = store_lfs_objects(ec.ctx.storage, repo.name, client.get(), no_server, std::move(needed),
                                    known_stored);
    if (!stored)
        return fail(stored.error());
    stored->server = outcome.server;
    stored->server_source = outcome.server_source;
    stored->scanned = scan.scanned;
    stored->found = scan.pointers.size();
    stored->set->lfsconfig = scan.lfsconfig;
    warnings.insert(warnings.end(), stored->warnings.begin(), stored->warnings.end());
    stored->warnings = std::move(warnings);
    spdlog::info("{}: LFS {} objects needed ({} bytes), {} downloaded ({} bytes), {} missing", repo.name,
                 stored->set->count, stored->set->bytes, stored->downloaded_objects, stored->downloaded_bytes,
                 stored->set->missing.size());
    produced.lfs = std::move(*stored);
    return {};
}

Status add_lfs_from_mirror(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input,
                           const std::filesystem::path& mirror, Produced& produced, const LfsScan* scanned,
                           git::CatFileSession* objects) {
    if (ec.repo.lfs == job::LfsMode::off)
        return {};
    if (scanned != nullptr)
        return add_lfs(ec, plan, input, *scanned, produced);
    std::set<std::string> tips, old;
    for (const auto& [name, target] : produced.refs)
        tips.insert(target.oid);
    const bool full = (produced.replanned ? *produced.replanned : plan).kind == SnapshotKind::full;
    if (!full && input.previous)
        for (const auto& [name, target] : input.previous->refs)
            old.insert(target.oid);
    const std::string head_commit = lfs_head_commit(produced.head, produced.refs);
    auto scan = scan_mirror(ec.ctx.git, mirror, {tips.begin(), tips.end()}, {old.begin(), old.end()},
                            head_commit, ec.deadline.left(), ExcludedTips::maybe_absent, objects);
    if (!scan)
        return fail(scan.error());
    return add_lfs(ec, plan, input, *scan, produced);
}

bool lfs_wants_full_pack(job::LfsMode mode, const PlanInput& input) {
    if (mode == job::LfsMode::on)
        return true;
    return mode == job::LfsMode::automatic && input.previous && input.previous->lfs &&
           input.previous->lfs->count > 0;
}

std::string lfs_head_commit(const git::HeadState& head, const git::RefMap& refs) {
    if (head.kind == git::HeadKind::detached)
        return head.target;
    if (head.kind != git::HeadKind::symbolic)
        return {};
    auto it = refs.find(head.target);
    if (it == refs.end())
        return {};
    return it->second.peeled.empty() ? it->second.oid : it->second.peeled;
}

namespace {

// The content of blob `oid` alone: a protocol v2 fetch of that one want and
// no haves (a pack of one object), at most lfs::k_max_lfsconfig_bytes.
Result<std::string> fetch_one_blob(const EngineContext& ec, const std::string& oid,
                                   const std::string& object_format) {
    auto client = git::ProtocolClient::open(stream_request(ec).transport);
    if (!client)
        return fail(client.error());
    std::optional<std::string> content;
    git::PackScanner scanner(git::PackScanOptions{.object_format = object_format,
                                                  .report_commits = false,
                                                  .max_blob_size = lfs::k_max_lfsconfig_bytes,
                                                  .max_objects = 1},
                             git::PackScanCallbacks{.on_blob = [&](const git::ScannedBlob& blob) -> Status {
                                 if (blob.oid == oid)
                                     content = blob.content;
                                 return {};
                             }});
    auto fetched = client->fetch(git::FetchRequest{.wants = {oid},
                                                   .thin_pack = false,
                                                   .max_pack_bytes = 2 * lfs::k_max_lfsconfig_bytes},
                                 [&scanner](std::string_view data) { return scanner.feed(data); }, {});
    if (!fetched)
        return fail(fetched.error());
    if (auto summary = scanner.finish(); !summary)
        return fail(summary.error());
    (void)client->close();
    if (!content)
        return fail(Error::git(
            fmt::format("the server sent no blob {} of at most {} bytes", oid, lfs::k_max_lfsconfig_bytes)));
    return *content;
}

// The new commits fetched again without thin deltas, only scanned (nothing is
// stored): every pointer and HEAD's root tree can then be read.
Result<std::unique_ptr<LfsPackScan>> rescan_without_thin(const EngineContext& ec, const PlanInput& input,
                                                         const Produced& produced) {
    const Manifest& parent = *input.previous;
    auto scan = std::make_unique<LfsPackScan>(lfs_head_commit(produced.head, produced.refs));
    BundleScanTap tap(nullptr, scan->make_scanner(input.listing.object_format));
    git::IncrementalExtras extras;
    for (const auto& [key, oid] : parent.preserved)
        extras.haves.push_back(oid);
    extras.thin_pack = false;
    auto streamed =
        git::stream_incremental_bundle(stream_request(ec), parent.refs, tap, parent.head_oid, extras);
    if (!streamed)
        return fail(streamed.error());
    if (streamed->refs != produced.refs)
        return fail(Error::git("the refs moved between the two fetches"));
    if (streamed->pack_written)
        if (auto s = tap.finish_scan(); !s)
            return fail(s.error());
    return scan;
}

// HEAD's .lfsconfig for `scan` from the stream engine's pack `pack`, into `scan`.
void read_head_lfsconfig(const EngineContext& ec, const PlanInput& input, const LfsPackScan& pack,
                         LfsScan& scan) {
    const std::optional<LfsConfigRecord> parent =
        input.previous && input.previous->lfs ? input.previous->lfs->lfsconfig : std::nullopt;
    auto head = head_lfsconfig(pack, parent);
    if (!head.known && !head.fetch_blob.empty()) {
        // The blob did not change since a snapshot that recorded nothing (or is over pointer size).
        auto fetched = fetch_one_blob(ec, head.fetch_blob, input.listing.object_format);
        if (fetched)
            head = head_lfsconfig(pack, parent, *fetched);
        else
            head.unknown +=
                fmt::format(", and fetching it alone failed: {}", redact(fetched.error().message));
    }
    scan.gitattributes_lfs = head.gitattributes_lfs;
    scan.lfsconfig = head.record;
    if (!head.warning.empty())
        scan.warnings.push_back(head.warning);
    if (head.known) {
        scan.lfsconfig_url = head.url;
        return;
    }
    scan.lfsconfig_url = parent ? parent->url : std::nullopt;
    scan.warnings.push_back(fmt::format("HEAD's .lfsconfig could not be read: {}; the LFS server is {}",
                                        head.unknown,
                                        parent ? "the one the previous snapshot recorded"
                                               : "the payload's lfs_url or derived from the clone URL"));
}

} // namespace

Status add_lfs_streamed(const EngineContext& ec, const SnapshotPlan& plan, const PlanInput& input,
                        const std::filesystem::path* index_repo, const LfsPackScan* pack_scan, bool thin,
                        Produced& produced) {
    if (ec.repo.lfs == job::LfsMode::off)
        return {};
    if (index_repo != nullptr && std::filesystem::exists(*index_repo))
        return add_lfs_from_mirror(ec, plan, input, *index_repo, produced);
    LfsScan scan;
    const bool need_lfsconfig = !ec.repo.lfs_url;
    const bool incremental =
        (produced.replanned ? *produced.replanned : plan).kind == SnapshotKind::incremental && input.previous;
    // "auto" on a thin pack that shows LFS: read the new commits again without thin deltas.
    std::unique_ptr<LfsPackScan> rescanned;
    if (pack_scan != nullptr && thin && incremental &&
        (!pack_scan->pointers().empty() || pack_scan->attributes_seen()) &&
        (pack_scan->unresolved() > 0 || need_lfsconfig)) {
        auto again = rescan_without_thin(ec, input, produced);
        if (again) {
            spdlog::info(
                "{}: LFS seen in a thin pack; the new commits were fetched again without thin deltas "
                "({} pointers, {} unresolved deltas of pointer size before)",
                ec.repo.name, pack_scan->pointers().size(), pack_scan->unresolved());
            rescanned = std::move(*again);
        } else {
            scan.warnings.push_back(
                fmt::format("fetching the new commits again without thin deltas failed: {}",
                            redact(again.error().message)));
        }
    }
    const LfsPackScan* pack = rescanned ? rescanned.get() : pack_scan;
    if (pack != nullptr) {
        scan.pointers = pack->pointers();
        if (rescanned) // a pointer of the first pack is one of the new commits' too
            for (const auto& p : pack_scan->pointers())
                scan.pointers.push_back(p);
        if (pack->unresolved() > 0) {
            scan.scanned = false;
            scan.not_scanned = fmt::format(
                "{} delta(s) of pointer size in the pack were on objects outside it (a thin pack), so the "
                "pointers among them could not be read; the previous snapshot's LFS set is carried on",
                pack->unresolved());
        }
        if (need_lfsconfig && pack->follows_head())
            read_head_lfsconfig(ec, input, *pack, scan);
    } else if (need_lfsconfig && input.previous && input.previous->lfs) {
        // No pack (refs-only change): HEAD's commit is an older one.
        LfsPackScan none(lfs_head_commit(produced.head, produced.refs));
        read_head_lfsconfig(ec, input, none, scan);
    }
    std::sort(scan.pointers.begin(), scan.pointers.end(), by_oid);
    scan.pointers.erase(std::unique(scan.pointers.begin(), scan.pointers.end(),
                                    [](const LfsObject& a, const LfsObject& b) { return a.oid == b.oid; }),
                        scan.pointers.end());
    // auto with nothing found and no LFS known: the log says what could not be
    // read (thin deltas on older trees and blobs, nearly always: measured in
    // docs/lfs.md), and the result stays that of a repository without LFS.
    if (!lfs_wanted(ec.repo.lfs, scan, input.previous ? input.previous->lfs : std::nullopt)) {
        if (!scan.scanned)
            spdlog::warn("{}: lfs \"auto\": {}", ec.repo.name, scan.not_scanned);
        return {};
    }
    return add_lfs(ec, plan, input, scan, produced);
}

LfsTotals lfs_totals(const LfsOutcome& outcome) {
    if (!outcome.set)
        return {};
    return {.objects = outcome.set->count,
            .bytes = outcome.set->bytes,
            .objects_uploaded = outcome.downloaded_objects,
            .bytes_uploaded = outcome.downloaded_bytes,
            .missing = outcome.set->missing.size()};
}

void add_lfs_totals(LfsTotals& total, const LfsTotals& more) {
    total.objects += more.objects;
    total.bytes += more.bytes;
    total.objects_uploaded += more.objects_uploaded;
    total.bytes_uploaded += more.bytes_uploaded;
    total.missing += more.missing;
}

nlohmann::json lfs_outcome_json(const LfsOutcome& outcome) {
    const LfsSet empty;
    const LfsSet& set = outcome.set ? *outcome.set : empty;
    nlohmann::json missing = nlohmann::json::array();
    for (const auto& m : set.missing)
        missing.push_back({{"oid", m.oid}, {"size", m.size}, {"reason", m.reason}});
    return {{"objects", set.count},
            {"bytes", set.bytes},
            {"found", outcome.found},
            {"downloaded_objects", outcome.downloaded_objects},
            {"downloaded_bytes", outcome.downloaded_bytes},
            {"already_stored", outcome.already_stored},
            {"missing", set.missing.size()},
            {"missing_objects", std::move(missing)},
            {"server", outcome.server.empty() ? nlohmann::json(nullptr) : nlohmann::json(outcome.server)},
            {"server_source",
             outcome.server_source.empty() ? nlohmann::json(nullptr) : nlohmann::json(outcome.server_source)},
            {"scanned", outcome.scanned}};
}

} // namespace snapshotter::snapshot
