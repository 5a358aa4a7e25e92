#include "snapshotter/snapshot/sources.hpp"

#include "snapshotter/snapshot/fleet.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/source/discover.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>
#include <map>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::snapshot {
namespace {

using nlohmann::json;

// A stable key of what a source lists: forge, API, scope and owner.
std::string source_key(const job::Source& s) {
    return fmt::format("{}-{:016x}", job::to_string(s.type),
                       stable_hash(fmt::format("{}\n{}\n{}\n{}", job::to_string(s.type), s.api_url,
                                               job::to_string(s.scope), s.owner)));
}

json describe(const job::Source& s) {
    return {{"source", s.path},
            {"type", job::to_string(s.type)},
            {"api_url", s.api_url},
            {job::to_string(s.scope), s.owner}};
}

// The names the source listed at its last run (empty when it never ran).
Result<std::set<std::string>> previous_names(storage::Storage& storage, const std::string& key) {
    auto text = storage.get(key);
    if (!text) {
        if (text.error().kind == ErrorKind::NotFound)
            return std::set<std::string>{};
        return fail(text.error());
    }
    json doc = json::parse(*text, nullptr, false);
    std::set<std::string> out;
    if (doc.is_object() && doc.contains("names") && doc["names"].is_array())
        for (const auto& n : doc["names"])
            if (n.is_string())
                out.insert(n.get<std::string>());
    return out;
}

} // namespace

SourcesExpansion expand_sources(const Context& ctx) {
    SourcesExpansion out;
    out.repositories = ctx.job.repositories;
    std::map<std::string, std::string> urls; // name -> URL, for collisions
    for (const auto& r : out.repositories)
        urls.emplace(r.name, r.url);
    const TransportPolicy policy{ctx.job.options.allow_http, ctx.job.options.allow_file};
    http::Client client;
    source::DiscoverOptions options;
    options.retries = ctx.job.options.retries;

    for (const auto& src : ctx.job.sources) {
        json entry = describe(src);
        auto forge = source::make_forge(src);
        options.max_wait = std::chrono::seconds{src.max_rate_limit_wait_s};
        auto found = source::discover(src, *forge, client, job::process_env, options);
        json calls = json::array();
        for (const auto& c : found.calls)
            calls.push_back(
                {{"method", "GET"}, {"url", c.url}, {"status", c.status}, {"duration_ms", c.duration_ms}});
        entry["api_requests"] = found.calls.size();
        entry["rate_limit_waits"] = found.rate_limit_waits;
        if (ctx.dry_run)
            entry["api_calls"] = calls;

        // 1. The listing, filtered; then the kept ones as repositories.
        std::optional<Error> error = found.error;
        const std::size_t kept = found.filtered.kept.size();
        source::Expansion expansion;
        if (!error) {
            expansion = source::expand(src, *forge, found.filtered.kept, policy);
            std::vector<source::RemoteRepository>().swap(found.filtered.kept); // now in `expansion`
            // 2. A discovered name taken by another repository fails this source.
            for (const auto& r : expansion.repositories) {
                auto it = urls.find(r.name);
                if (it != urls.end()) {
                    error = Error::payload(fmt::format(
                        "repository name \"{}\" of {} is already taken by {}; give the explicit repository a "
                        "\"name\" or exclude it from this source",
                        r.name, redact_url(r.url), redact_url(it->second)));
                    break;
                }
            }
        }
        if (error) {
            spdlog::error("{}: {}", src.path, redact(error->message));
            entry["status"] = "failed";
            entry["error"] = error_kind_name(error->kind);
            entry["message"] = redact(error->message);
            ++out.failed;
            if (!out.first_error)
                out.first_error = Error{error->kind, fmt::format("{}: {}", src.path, redact(error->message))};
            out.report.push_back(std::move(entry));
            continue;
        }

        // 3. What each filter removed, in order.
        json removed = json::object();
        for (std::size_t f = 0; f < source::k_filters.size(); ++f)
            if (!found.filtered.removed[f].empty())
                removed[std::string(source::k_filters[f])] = {{"count", found.filtered.removed[f].size()},
                                                              {"names", found.filtered.removed[f]}};
        json rejected = json::array();
        for (const auto& [name, why] : expansion.rejected)
            rejected.push_back({{"name", name}, {"reason", why}});

        // 4. Gone: listed last run, not now. Their snapshots stay; nothing is pruned.
        std::vector<std::string> names;
        for (const auto& r : expansion.repositories) {
            urls.emplace(r.name, r.url);
            names.push_back(r.name);
        }
        const auto key = layout::source_listing_key(source_key(src));
        json gone = json::array();
        if (auto before = previous_names(ctx.storage, key); !before) {
            spdlog::warn("{}: cannot read its previous listing {}: {}", src.path, key,
                         before.error().message);
        } else {
            std::set<std::string> now(names.begin(), names.end());
            for (const auto& n : *before)
                if (!now.contains(n)) {
                    gone.push_back(n);
                    out.gone.push_back(n);
                }
        }
        if (!ctx.dry_run) {
            json listing = describe(src);
            listing["updated_at"] = format_rfc3339(Clock::now());
            listing["names"] = names;
            if (auto s = ctx.storage.put(key, listing.dump(1) + "\n", Overwrite::yes); !s)
                spdlog::warn("{}: cannot write its listing {}: {}", src.path, key, s.error().message);
        }

        entry["status"] = "ok";
        entry["listed"] = found.listed;
        entry["kept"] = kept;
        entry["removed"] = std::move(removed);
        entry["wikis"] = expansion.wikis;
        if (!rejected.empty())
            entry["rejected"] = std::move(rejected);
        entry["repositories"] = names;
        entry["gone"] = std::move(gone);
        spdlog::info("{}: {} repositories listed, {} kept{}", src.path, found.listed, names.size(),
                     expansion.wikis > 0 ? fmt::format(" (with {} wikis)", expansion.wikis) : std::string());
        for (auto& r : expansion.repositories)
            out.repositories.push_back(std::move(r));
        out.report.push_back(std::move(entry));
    }
    return out;
}

} // namespace snapshotter::snapshot
