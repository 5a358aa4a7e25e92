#include "snapshotter/snapshot/manifest.hpp"

#include "snapshotter/util/json.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>

namespace snapshotter::snapshot {

using nlohmann::json;

namespace {

bool is_hex_oid(std::string_view s) {
    if (s.size() != 40 && s.size() != 64)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

Error bad(std::string_view what) {
    return Error::integrity(fmt::format("manifest: {}", what));
}

} // namespace

std::string_view to_string(SnapshotKind kind) {
    switch (kind) {
    case SnapshotKind::incremental:
        return "incremental";
    case SnapshotKind::empty:
        return "empty";
    case SnapshotKind::unchanged:
        return "unchanged";
    case SnapshotKind::full:
        break;
    }
    return "full";
}

std::optional<SnapshotKind> parse_snapshot_kind(std::string_view text) {
    for (auto kind :
         {SnapshotKind::full, SnapshotKind::incremental, SnapshotKind::empty, SnapshotKind::unchanged})
        if (to_string(kind) == text)
            return kind;
    return std::nullopt;
}

void to_json(nlohmann::json& j, SnapshotKind kind) {
    j = to_string(kind);
}

std::string_view to_string(RefChangeKind change) {
    switch (change) {
    case RefChangeKind::fast_forward:
        return "fast_forward";
    case RefChangeKind::rewritten:
        return "rewritten";
    case RefChangeKind::updated:
        return "updated";
    case RefChangeKind::deleted:
        return "deleted";
    case RefChangeKind::created:
        break;
    }
    return "created";
}

std::optional<RefChangeKind> parse_ref_change(std::string_view text) {
    for (auto change : {RefChangeKind::created, RefChangeKind::fast_forward, RefChangeKind::rewritten,
                        RefChangeKind::updated, RefChangeKind::deleted})
        if (to_string(change) == text)
            return change;
    return std::nullopt;
}

void to_json(nlohmann::json& j, RefChangeKind change) {
    j = to_string(change);
}

git::HeadState head_state(const Manifest& manifest) {
    switch (manifest.head_kind) {
    case git::HeadKind::symbolic:
    case git::HeadKind::unborn:
        return {manifest.head_kind, manifest.head.value_or("")};
    case git::HeadKind::detached:
        return {manifest.head_kind, manifest.head_oid};
    case git::HeadKind::absent:
        break;
    }
    return {};
}

std::optional<std::string> named_head(const git::HeadState& head) {
    if (head.kind == git::HeadKind::symbolic || head.kind == git::HeadKind::unborn)
        return head.target;
    return std::nullopt;
}

void set_head(Manifest& manifest, const git::HeadState& head) {
    manifest.head_kind = head.kind;
    manifest.head = named_head(head);
    manifest.head_oid = head.kind == git::HeadKind::detached ? head.target : "";
}

Result<std::string> serialize_manifest(const Manifest& m) {
    json refs = json::object();
    for (const auto& [name, target] : m.refs) {
        json t = {{"oid", target.oid}};
        if (!target.peeled.empty())
            t["peeled"] = target.peeled;
        refs[name] = std::move(t);
    }
    json bundles = json::array();
    for (const auto& b : m.bundles)
        bundles.push_back({{"snapshot_id", b.snapshot_id},
                           {"key", b.key},
                           {"size", b.size},
                           {"sha256", b.sha256},
                           {"prerequisites", b.prerequisites}});
    json changes = json::object();
    for (const auto& [name, c] : m.changes) {
        json entry = {{"change", c.change}};
        entry["old"] = c.old_oid.empty() ? json(nullptr) : json(c.old_oid);
        entry["new"] = c.new_oid.empty() ? json(nullptr) : json(c.new_oid);
        changes[name] = std::move(entry);
    }
    json j = {{"schema_version", m.schema_version},
              {"snapshot_id", m.snapshot_id},
              {"repository", m.repository},
              {"source_url", m.source_url},
              {"created_at", m.created_at},
              {"job_id", m.job_id},
              {"engine", m.engine},
              {"engine_fallback", m.engine_fallback ? json(*m.engine_fallback) : json(nullptr)},
              {"git_version", m.git_version},
              {"object_format", m.object_format},
              {"kind", m.kind},
              {"head", m.head ? json(*m.head) : json(nullptr)},
              {"head_state", git::head_kind_name(m.head_kind)},
              {"head_oid", m.head_oid.empty() ? json(nullptr) : json(m.head_oid)},
              {"refs", std::move(refs)},
              {"ref_patterns", m.ref_patterns},
              {"bundles", std::move(bundles)},
              {"parent", m.parent ? json(*m.parent) : json(nullptr)},
              {"changes", std::move(changes)},
              {"preserved", m.preserved},
              {"timings_ms", m.timings_ms}};
    // Written only for a shallow snapshot, so other manifests stay as they were.
    if (!m.shallow.empty())
        j["shallow"] = m.shallow;
    if (m.lfs)
        j["lfs"] = lfs_set_to_json(*m.lfs);
    try {
        return j.dump(2) + "\n";
    } catch (const json::type_error&) {
        return fail(Error::git("a ref name is not valid UTF-8; snapshotter cannot record it exactly"));
    }
}

Result<Manifest> parse_manifest(std::string_view text) {
    auto parsed = parse_json_bounded(text);
    if (!parsed)
        return fail(bad(parsed.error().message));
    const json j = std::move(*parsed);
    if (!j.is_object())
        return fail(bad("not an object"));
    Manifest m;
    std::string kind;
    try {
        auto version = json_integer<int>(j.at("schema_version"));
        if (!version)
            return fail(bad("schema_version is not an integer"));
        m.schema_version = *version;
        if (m.schema_version != k_manifest_schema_version)
            return fail(bad(fmt::format("schema_version {} is not supported", m.schema_version)));
        m.snapshot_id = j.at("snapshot_id").get<std::string>();
        m.repository = j.at("repository").get<std::string>();
        m.source_url = j.at("source_url").get<std::string>();
        m.created_at = j.at("created_at").get<std::string>();
        m.job_id = j.value("job_id", "");
        m.engine = j.at("engine").get<std::string>();
        if (auto it = j.find("engine_fallback"); it != j.end() && !it->is_null())
            m.engine_fallback = it->get<std::string>();
        m.git_version = j.value("git_version", "");
        m.object_format = j.at("object_format").get<std::string>();
        kind = j.at("kind").get<std::string>();
        if (!j.at("head").is_null())
            m.head = j.at("head").get<std::string>();
        // Manifests before head_state knew only a symbolic HEAD or none.
        m.head_kind = m.head ? git::HeadKind::symbolic : git::HeadKind::absent;
        if (auto it = j.find("head_state"); it != j.end() && !it->is_null()) {
            auto kind = git::head_kind_from_name(it->get<std::string>());
            if (!kind)
                return fail(bad(fmt::format("unknown head_state \"{}\"", it->get<std::string>())));
            m.head_kind = *kind;
        }
        if (auto it = j.find("head_oid"); it != j.end() && !it->is_null())
            m.head_oid = it->get<std::string>();
        if (m.head_kind == git::HeadKind::detached && !is_hex_oid(m.head_oid))
            return fail(bad("a detached HEAD without a valid head_oid"));
        if ((m.head_kind == git::HeadKind::symbolic || m.head_kind == git::HeadKind::unborn) !=
            m.head.has_value())
            return fail(bad("head and head_state disagree"));
        if (auto it = j.find("shallow"); it != j.end() && !it->is_null()) {
            m.shallow = it->get<std::vector<std::string>>();
            for (const auto& oid : m.shallow)
                if (!is_hex_oid(oid))
                    return fail(bad("shallow lists an invalid object id"));
        }
        for (const auto& [name, t] : j.at("refs").items()) {
            git::RefTarget target{t.at("oid").get<std::string>(), t.value("peeled", "")};
            if (!is_hex_oid(target.oid) || (!target.peeled.empty() && !is_hex_oid(target.peeled)))
                return fail(bad(fmt::format("ref {} has an invalid object id", name)));
            m.refs.emplace(name, std::move(target));
        }
        m.ref_patterns = j.value("ref_patterns", std::vector<std::string>{});
        for (const auto& b : j.at("bundles")) {
            auto size = json_integer<std::uint64_t>(b.at("size"));
            if (!size)
                return fail(bad("a bundle size is not a non-negative integer"));
            BundleInfo info{b.at("snapshot_id").get<std::string>(), b.at("key").get<std::string>(), *size,
                            b.at("sha256").get<std::string>(),
                            b.value("prerequisites", std::vector<std::string>{})};
            if (info.sha256.size() != 64)
                return fail(bad(fmt::format("bundle {} has an invalid sha256", info.key)));
            m.bundles.push_back(std::move(info));
        }
        if (!j.at("parent").is_null())
            m.parent = j.at("parent").get<std::string>();
        if (auto it = j.find("changes"); it != j.end())
            for (const auto& [name, c] : it->items()) {
                auto text = c.at("change").get<std::string>();
                RefChange change{{},
                                 c.at("old").is_null() ? "" : c.at("old").get<std::string>(),
                                 c.at("new").is_null() ? "" : c.at("new").get<std::string>()};
                auto known = parse_ref_change(text);
                if (!known)
                    return fail(bad(fmt::format("ref {} has an unknown change \"{}\"", name, text)));
                change.change = *known;
                m.changes.emplace(name, std::move(change));
            }
        if (auto it = j.find("preserved"); it != j.end())
            for (const auto& [key, oid] : it->items()) {
                auto value = oid.get<std::string>();
                if (!is_hex_oid(value))
                    return fail(bad(fmt::format("preserved tip {} has an invalid object id", key)));
                m.preserved.emplace(key, std::move(value));
            }
        if (auto it = j.find("timings_ms"); it != j.end() && it->is_object())
            for (const auto& [k, v] : it->items())
                if (auto ms = json_integer<long long>(v))
                    m.timings_ms[k] = *ms;
        if (auto it = j.find("lfs"); it != j.end() && !it->is_null()) {
            auto lfs = lfs_set_from_json(*it, m.repository);
            if (!lfs)
                return fail(lfs.error());
            m.lfs = std::move(*lfs);
        }
    } catch (const json::exception& e) {
        return fail(bad(fmt::format("missing or mistyped field ({})", e.what())));
    }
    if (!is_snapshot_id(m.snapshot_id))
        return fail(bad(fmt::format("invalid snapshot id \"{}\"", m.snapshot_id)));
    if (m.object_format != "sha1" && m.object_format != "sha256")
        return fail(bad(fmt::format("unknown object format \"{}\"", m.object_format)));
    if (auto known = parse_snapshot_kind(kind))
        m.kind = *known;
    else
        return fail(bad(fmt::format("unknown kind \"{}\"", kind)));
    if (!m.refs.empty() && m.bundles.empty())
        return fail(bad("has refs but no bundle"));
    return m;
}

std::string preserved_ref_name(const std::string& key) {
    return "refs/snapshotter/preserved/" + key;
}

std::string serialize_latest(const std::string& snapshot_id, const std::string& manifest_key) {
    return json{{"snapshot_id", snapshot_id}, {"manifest", manifest_key}}.dump() + "\n";
}

Result<std::string> parse_latest(std::string_view text) {
    auto parsed = parse_json_bounded(text);
    if (!parsed)
        return fail(Error::integrity(fmt::format("latest pointer: {}", parsed.error().message)));
    try {
        const json& j = *parsed;
        auto id = j.at("snapshot_id").get<std::string>();
        if (!is_snapshot_id(id))
            return fail(Error::integrity(fmt::format("latest pointer: invalid snapshot id \"{}\"", id)));
        return id;
    } catch (const json::exception&) {
        return fail(Error::integrity("latest pointer is not valid JSON"));
    }
}

} // namespace snapshotter::snapshot
