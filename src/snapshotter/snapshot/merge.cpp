// The merge_reports action: the shards of one job each wrote
// jobs/<job-id>/shard-<i>-of-<n>.json; this reads them all and writes the
// whole job's report to jobs/<job-id>.json.
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/fleet.hpp"
#include "snapshotter/util/json.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {

using nlohmann::json;

Outcome run_merge_reports(const Context& ctx) {
    const std::string& job_id = ctx.job.merge_reports.job_id;
    const std::string prefix = fmt::format("jobs/{}/shard-", job_id);

    // 1. Read every shard report of the job.
    auto objects = ctx.storage.list(prefix);
    if (!objects)
        return {nullptr, objects.error(), false};
    if (objects->empty())
        return {nullptr, Error::not_found(fmt::format("no shard report of job {} under {}", job_id, prefix)),
                false};
    std::optional<int> count;
    std::set<int> seen;
    json repositories = json::array();
    json summary = {{"total", 0},          {"ok", 0},           {"unchanged", 0},
                    {"failed", 0},         {"skipped", 0},      {"bytes", 0},
                    {"refs_rewritten", 0}, {"refs_deleted", 0}, {"latest_not_advanced", 0}};
    // Added later; a shard report without them counts zero.
    for (const char* field : {"refs_updated", "lfs_objects", "lfs_bytes", "lfs_objects_uploaded",
                              "lfs_bytes_uploaded", "lfs_missing"})
        summary[field] = 0;
    // Every shard lists a job's sources itself: a source that failed failed in each shard (the
    // most any shard saw is the job's count), and a repository gone from a source may be named by
    // several shards (merged as one set).
    std::uint64_t sources_failed = 0;
    std::set<std::string> gone;
    bool has_sources = false;
    bool interrupted = false;
    for (const auto& object : *objects) {
        auto text = ctx.storage.get(object.key);
        if (!text)
            return {nullptr, text.error(), false};
        // Bounded in depth: the copies and the dump below recurse.
        auto parsed = parse_json_bounded(*text);
        if (!parsed)
            return {nullptr,
                    Error::integrity(
                        fmt::format("{} is not a job report: {}", object.key, parsed.error().message)),
                    false};
        const json report = std::move(*parsed);
        try {
            auto shard_count = json_integer<int>(report.at("shard").at("count"));
            auto shard_index = json_integer<int>(report.at("shard").at("index"));
            if (!shard_count || !shard_index || *shard_count < 1 ||
                *shard_count > job::defaults::k_max_shards || *shard_index < 0 ||
                *shard_index >= *shard_count)
                return {nullptr,
                        Error::integrity(fmt::format("{} has no valid shard count and index", object.key)),
                        false};
            if (count && *count != *shard_count)
                return {nullptr,
                        Error::integrity(fmt::format("{} says {} shards, an earlier report said {}",
                                                     object.key, *shard_count, *count)),
                        false};
            count = shard_count;
            seen.insert(*shard_index);
            for (auto& r : report.at("repositories"))
                repositories.push_back(r);
            for (auto& [k, v] : summary.items()) {
                const auto& shard_summary = report.at("summary");
                auto it = shard_summary.find(k);
                auto add = it == shard_summary.end() ? std::optional<std::uint64_t>{0}
                                                     : json_integer<std::uint64_t>(*it);
                if (!add)
                    return {nullptr,
                            Error::integrity(fmt::format("{}: summary.{} is not a count", object.key, k)),
                            false};
                v = v.get<std::uint64_t>() + *add;
            }
            interrupted = interrupted || report.value("interrupted", false);
            if (auto it = report.at("summary").find("sources_failed"); it != report.at("summary").end()) {
                auto n = json_integer<std::uint64_t>(*it);
                if (!n)
                    return {nullptr,
                            Error::integrity(
                                fmt::format("{}: summary.sources_failed is not a count", object.key)),
                            false};
                sources_failed = std::max(sources_failed, *n);
            }
            if (auto it = report.find("gone"); it != report.end()) {
                has_sources = true;
                for (const auto& name : it->get<std::vector<std::string>>())
                    gone.insert(name);
            }
        } catch (const json::exception& e) {
            return {nullptr,
                    Error::integrity(fmt::format("{} is not a job report: {}", object.key, e.what())), false};
        }
    }
    json missing = json::array();
    for (int i = 0; i < *count; ++i)
        if (!seen.contains(i))
            missing.push_back(i);

    // 2. Write the merged report (it is rewritten when a late shard arrives).
    if (has_sources || sources_failed > 0) {
        summary["gone"] = gone.size();
        summary["sources_failed"] = sources_failed;
    }
    json result = {{"action", "merge_reports"},
                   {"job_id", job_id},
                   {"shards", *count},
                   {"shards_found", seen.size()},
                   {"missing_shards", missing},
                   {"complete", missing.empty()},
                   {"interrupted", interrupted},
                   {"summary", summary},
                   {"repositories", std::move(repositories)}};
    if (has_sources)
        result["gone"] = gone;
    if (!ctx.dry_run) {
        json report = result;
        report["merged_at"] = format_rfc3339(Clock::now());
        auto key = report_key(job_id, std::nullopt);
        if (auto s = ctx.storage.put(key, report.dump(2) + "\n", Overwrite::yes); !s)
            return {nullptr, s.error(), false};
        result["report"] = key;
    }
    Outcome out{std::move(result), std::nullopt, false};
    out.partial = !missing.empty() || summary.at("failed").get<std::uint64_t>() > 0;
    return out;
}

} // namespace snapshotter::snapshot
