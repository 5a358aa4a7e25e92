#include "snapshotter/snapshot/manifest.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/util/json.hpp"
#include "snapshotter/util/time.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <limits>
#include <set>

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

namespace {

json target_json(const git::RefTarget& target) {
    json t = {{"oid", target.oid}};
    if (!target.peeled.empty())
        t["peeled"] = target.peeled;
    return t;
}

json bundle_json(const BundleInfo& b) {
    return {{"snapshot_id", b.snapshot_id},
            {"key", b.key},
            {"size", b.size},
            {"sha256", b.sha256},
            {"prerequisites", b.prerequisites}};
}

// The sets a full table holds, as JSON; a version-1 manifest holds the same
// members inline.
json sets_json(const Manifest& m) {
    json refs = json::object();
    for (const auto& [name, target] : m.refs)
        refs[name] = target_json(target);
    json bundles = json::array();
    for (const auto& b : m.bundles)
        bundles.push_back(bundle_json(b));
    json j = {{"refs", std::move(refs)}, {"bundles", std::move(bundles)}, {"preserved", m.preserved}};
    // Written only for a shallow snapshot, so other manifests stay as they were.
    if (!m.shallow.empty())
        j["shallow"] = m.shallow;
    return j;
}

// `j` as text indented by `indent` (-1: compact), then `suffix`.
Result<std::string> dump_utf8(const json& j, int indent, std::string_view suffix) {
    try {
        return j.dump(indent) + std::string(suffix);
    } catch (const json::type_error&) {
        return fail(Error::git("a ref name is not valid UTF-8; snapshotter cannot record it exactly"));
    }
}

bool is_hex_digest(std::string_view s) {
    return s.size() == 64 && is_hex_oid(s);
}

// The members below throw json::exception on a missing or mistyped member.

Result<git::RefTarget> parse_target(const std::string& name, const json& t) {
    git::RefTarget target{t.at("oid").get<std::string>(), t.value("peeled", "")};
    if (!is_hex_oid(target.oid) || (!target.peeled.empty() && !is_hex_oid(target.peeled)))
        return fail(bad(fmt::format("ref {} has an invalid object id", name)));
    return target;
}

Result<BundleInfo> parse_bundle(const json& b) {
    auto size = json_integer<std::uint64_t>(b.at("size"));
    if (!size)
        return fail(bad("a bundle size is not a non-negative integer"));
    BundleInfo info{b.at("snapshot_id").get<std::string>(), b.at("key").get<std::string>(), *size,
                    b.at("sha256").get<std::string>(), b.value("prerequisites", std::vector<std::string>{})};
    if (info.sha256.size() != 64)
        return fail(bad(fmt::format("bundle {} has an invalid sha256", info.key)));
    return info;
}

Result<std::string> parse_tip(const std::string& key, const json& oid) {
    auto value = oid.get<std::string>();
    if (!is_hex_oid(value))
        return fail(bad(fmt::format("preserved tip {} has an invalid object id", key)));
    return value;
}

Result<std::vector<std::string>> parse_shallow(const json& j) {
    auto shallow = j.get<std::vector<std::string>>();
    for (const auto& oid : shallow)
        if (!is_hex_oid(oid))
            return fail(bad("shallow lists an invalid object id"));
    return shallow;
}

Status check_refs_have_bundles(const Manifest& m) {
    if (!m.refs.empty() && m.bundles.empty())
        return fail(bad("has refs but no bundle"));
    return {};
}

// Read the sets (refs, bundles, preserved, shallow) from `j` into `m`.
Status parse_sets(const json& j, Manifest& m) {
    if (auto it = j.find("shallow"); it != j.end() && !it->is_null()) {
        auto shallow = parse_shallow(*it);
        if (!shallow)
            return fail(shallow.error());
        m.shallow = std::move(*shallow);
    }
    for (const auto& [name, t] : j.at("refs").items()) {
        auto target = parse_target(name, t);
        if (!target)
            return fail(target.error());
        m.refs.emplace(name, std::move(*target));
    }
    for (const auto& b : j.at("bundles")) {
        auto info = parse_bundle(b);
        if (!info)
            return fail(info.error());
        m.bundles.push_back(std::move(*info));
    }
    if (auto it = j.find("preserved"); it != j.end())
        for (const auto& [key, oid] : it->items()) {
            auto value = parse_tip(key, oid);
            if (!value)
                return fail(value.error());
            m.preserved.emplace(key, std::move(*value));
        }
    return check_refs_have_bundles(m);
}

// Whether the table reference names its key (version 2) or leaves it to layout.
enum class Keyed { no, yes };

json table_ref_json(const TableRef& ref, Keyed keyed) {
    json t = {{"sha256", ref.sha256}, {"size", ref.size}, {"raw_size", ref.raw_size}, {"count", ref.count}};
    if (keyed == Keyed::yes)
        t["key"] = ref.key;
    return t;
}

Result<TableRef> parse_table_ref(const json& t, const std::string& repository, Keyed keyed) {
    auto size = json_integer<std::uint64_t>(t.at("size"));
    auto raw_size = json_integer<std::uint64_t>(t.at("raw_size"));
    auto count = json_integer<std::uint64_t>(t.at("count"));
    if (!size || !raw_size || !count)
        return fail(bad("a table size or count is not a non-negative integer"));
    TableRef ref{"", t.at("sha256").get<std::string>(), *size, *raw_size, *count};
    if (!is_hex_digest(ref.sha256))
        return fail(
            bad(fmt::format("a table reference has an invalid sha256 \"{}\"", ref.sha256.substr(0, 80))));
    ref.key =
        keyed == Keyed::yes ? t.at("key").get<std::string>() : layout::table_key(repository, ref.sha256);
    return ref;
}

// The members a delta table may hold; any other is refused (a newer format
// must not be half-applied).
constexpr std::array<std::string_view, 9> k_delta_members{
    "base",          "depth",   "refs_set",          "refs_removed", "bundles_kept",
    "bundles_added", "shallow", "preserved_removed", "preserved_set"};

// Apply members `<set>_removed` (names that must be in `map`) and `<set>_set`
// (entries parsed by `parse`, none also removed) of delta `j` to `map`;
// `what` names an entry in errors.
template <typename Map, typename Parse>
Status apply_entries(const json& j, const std::string& set, std::string_view what, Map& map, Parse parse) {
    std::set<std::string> removed;
    if (auto it = j.find(set + "_removed"); it != j.end())
        for (const auto& name : *it) {
            auto text = name.get<std::string>();
            if (map.erase(text) == 0)
                return fail(bad(fmt::format("table: the delta removes {} {}, which its base does not hold",
                                            what, text.substr(0, 300))));
            removed.insert(std::move(text));
        }
    if (auto it = j.find(set + "_set"); it != j.end())
        for (const auto& [name, value] : it->items()) {
            if (removed.contains(name))
                return fail(bad(fmt::format("table: the delta both sets and removes {} {}", what, name)));
            auto parsed = parse(name, value);
            if (!parsed)
                return fail(parsed.error());
            map.insert_or_assign(name, std::move(*parsed));
        }
    return {};
}

// Apply delta `j` to the sets of `m` (the base's).
Status apply_delta(const json& j, Manifest& m) {
    for (const auto& [member, value] : j.items())
        if (std::find(k_delta_members.begin(), k_delta_members.end(), member) == k_delta_members.end())
            return fail(bad(fmt::format("table: a delta member \"{}\" this version does not know",
                                        member.substr(0, 80))));
    if (auto s = apply_entries(j, "refs", "ref", m.refs, parse_target); !s)
        return s;
    auto kept = json_integer<std::uint64_t>(j.at("bundles_kept"));
    if (!kept || *kept > m.bundles.size())
        return fail(bad(fmt::format("table: the delta keeps {} bundles of a base holding {}",
                                    j.at("bundles_kept").dump().substr(0, 40), m.bundles.size())));
    m.bundles.resize(*kept);
    if (auto it = j.find("bundles_added"); it != j.end())
        for (const auto& b : *it) {
            auto info = parse_bundle(b);
            if (!info)
                return fail(info.error());
            m.bundles.push_back(std::move(*info));
        }
    if (auto s = apply_entries(j, "preserved", "preserved tip", m.preserved, parse_tip); !s)
        return s;
    if (auto it = j.find("shallow"); it != j.end()) {
        auto shallow = parse_shallow(*it);
        if (!shallow)
            return fail(shallow.error());
        m.shallow = std::move(*shallow);
    }
    return check_refs_have_bundles(m);
}

} // namespace

Result<std::string> table_json(const Manifest& manifest) {
    return dump_utf8(sets_json(manifest), -1, "");
}

Result<std::string> delta_table_json(const Manifest& base, const TableRef& base_ref, int depth,
                                     const Manifest& m) {
    json refs_set = json::object();
    json refs_removed = json::array();
    for (const auto& [name, target] : m.refs)
        if (auto it = base.refs.find(name); it == base.refs.end() || it->second != target)
            refs_set[name] = target_json(target);
    for (const auto& [name, target] : base.refs)
        if (!m.refs.contains(name))
            refs_removed.push_back(name);
    std::size_t kept = 0;
    while (kept < base.bundles.size() && kept < m.bundles.size() && base.bundles[kept] == m.bundles[kept])
        ++kept;
    json added = json::array();
    for (std::size_t i = kept; i < m.bundles.size(); ++i)
        added.push_back(bundle_json(m.bundles[i]));
    json tips_set = json::object();
    json tips_removed = json::array();
    for (const auto& [key, oid] : m.preserved)
        if (auto it = base.preserved.find(key); it == base.preserved.end() || it->second != oid)
            tips_set[key] = oid;
    for (const auto& [key, oid] : base.preserved)
        if (!m.preserved.contains(key))
            tips_removed.push_back(key);
    // Empty members are left out: an ordinary night's delta is a few hundred bytes.
    json j = {{"base", table_ref_json(base_ref, Keyed::no)}, {"depth", depth}, {"bundles_kept", kept}};
    if (!refs_set.empty())
        j["refs_set"] = std::move(refs_set);
    if (!refs_removed.empty())
        j["refs_removed"] = std::move(refs_removed);
    if (!added.empty())
        j["bundles_added"] = std::move(added);
    if (!tips_set.empty())
        j["preserved_set"] = std::move(tips_set);
    if (!tips_removed.empty())
        j["preserved_removed"] = std::move(tips_removed);
    if (m.shallow != base.shallow)
        j["shallow"] = m.shallow;
    return dump_utf8(j, -1, "");
}

Result<ParsedTable> parse_table(std::string_view text, const std::string& repository, int max_depth) {
    auto parsed = parse_json_bounded(text);
    if (!parsed)
        return fail(bad(fmt::format("table: {}", parsed.error().message)));
    if (!parsed->is_object())
        return fail(bad("table: not an object"));
    ParsedTable table;
    try {
        if (auto it = parsed->find("base"); it != parsed->end()) {
            auto depth = json_integer<int>(parsed->at("depth"));
            if (!depth || *depth < 1 || *depth > max_depth)
                return fail(bad(fmt::format("table: a delta of depth {}; 1 to {} are read",
                                            parsed->at("depth").dump().substr(0, 40), max_depth)));
            auto base = parse_table_ref(*it, repository, Keyed::no);
            if (!base)
                return fail(base.error());
            table.depth = *depth;
            table.base = std::move(*base);
        } else if (parsed->contains("depth")) {
            return fail(bad("table: a depth without a base"));
        }
    } catch (const json::exception& e) {
        return fail(bad(fmt::format("table: missing or mistyped field ({})", e.what())));
    }
    table.content = std::move(*parsed);
    return table;
}

Status apply_table(Manifest& m, const ParsedTable& table) {
    try {
        if (table.base)
            return apply_delta(table.content, m);
        m.refs.clear();
        m.bundles.clear();
        m.preserved.clear();
        m.shallow.clear();
        return parse_sets(table.content, m);
    } catch (const json::exception& e) {
        return fail(bad(fmt::format("table: missing or mistyped field ({})", e.what())));
    }
}

Status apply_table(Manifest& m, std::string_view text) {
    auto table = parse_table(text, m.repository, std::numeric_limits<int>::max());
    if (!table)
        return fail(table.error());
    if (table->base)
        return fail(bad("table: a delta where a full table is expected"));
    if (auto s = apply_table(m, *table); !s)
        return s;
    if (m.table && m.refs.size() != m.table->count)
        return fail(bad(fmt::format("table {} holds {} refs, the manifest says {}", m.table->key,
                                    m.refs.size(), m.table->count)));
    return {};
}

bool same_sets(const Manifest& a, const Manifest& b) {
    return a.refs == b.refs && a.bundles == b.bundles && a.preserved == b.preserved && a.shallow == b.shallow;
}

Result<std::string> serialize_manifest(const Manifest& m) {
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
              {"ref_patterns", m.ref_patterns},
              {"parent", m.parent ? json(*m.parent) : json(nullptr)},
              {"changes", std::move(changes)},
              {"timings_ms", m.timings_ms}};
    if (m.lfs)
        j["lfs"] = lfs_set_to_json(*m.lfs);
    if (m.walk_anchor)
        j["walk_anchor"] = {{"commit", m.walk_anchor->commit}, {"parents", m.walk_anchor->parents}};
    if (m.schema_version == k_manifest_schema_version_v1) {
        j.update(sets_json(m));
        return dump_utf8(j, 2, "\n");
    }
    if (m.schema_version != k_manifest_schema_version && m.schema_version != k_manifest_schema_version_v3 &&
        m.schema_version != k_manifest_schema_version_v2)
        return fail(bad(fmt::format("schema_version {} cannot be written", m.schema_version)));
    if (!m.table)
        return fail(bad(fmt::format("a version-{} manifest needs its table stored first", m.schema_version)));
    // Versions 3 and 4 leave the key out: layout makes it from the digest.
    j["table"] =
        table_ref_json(*m.table, m.schema_version == k_manifest_schema_version_v2 ? Keyed::yes : Keyed::no);
    // Compact: an unchanged night stores this object and little else.
    auto text = dump_utf8(j, -1, "\n");
    if (!text)
        return text;
    if (text->size() > k_max_manifest_bytes)
        return fail(Error::git(fmt::format("the manifest of {} would hold {} bytes of JSON, more than "
                                           "the {} a reader reads",
                                           m.repository, text->size(), k_max_manifest_bytes)));
    if (m.schema_version != k_manifest_schema_version)
        return text;
    return gzip_compress(*text);
}

namespace {

// Whether `data` starts as a gzip stream does (JSON never starts with 0x1f).
bool is_gzip(std::string_view data) {
    return data.size() >= 2 && data[0] == '\x1f' && data[1] == '\x8b';
}

} // namespace

Result<Manifest> parse_manifest(std::string_view data) {
    const bool gzipped = is_gzip(data);
    std::string inflated;
    if (gzipped) {
        auto text = gzip_decompress(data, k_max_manifest_bytes);
        if (!text)
            return fail(bad(text.error().message));
        inflated = std::move(*text);
    }
    auto parsed = parse_json_bounded(gzipped ? std::string_view(inflated) : data);
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
        if (m.schema_version != k_manifest_schema_version &&
            m.schema_version != k_manifest_schema_version_v3 &&
            m.schema_version != k_manifest_schema_version_v2 &&
            m.schema_version != k_manifest_schema_version_v1)
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
        m.ref_patterns = j.value("ref_patterns", std::vector<std::string>{});
        if (m.schema_version == k_manifest_schema_version_v1) {
            if (auto s = parse_sets(j, m); !s)
                return fail(s.error());
        } else {
            auto ref =
                parse_table_ref(j.at("table"), m.repository,
                                m.schema_version == k_manifest_schema_version_v2 ? Keyed::yes : Keyed::no);
            if (!ref)
                return fail(ref.error());
            m.table = std::move(*ref);
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
        if (auto it = j.find("walk_anchor"); it != j.end() && !it->is_null())
            m.walk_anchor = git::WalkAnchor{it->at("commit").get<std::string>(),
                                            it->at("parents").get<std::vector<std::string>>()};
    } catch (const json::exception& e) {
        return fail(bad(fmt::format("missing or mistyped field ({})", e.what())));
    }
    if (!is_snapshot_id(m.snapshot_id))
        return fail(bad(fmt::format("invalid snapshot id \"{}\"", m.snapshot_id)));
    if (m.object_format != "sha1" && m.object_format != "sha256")
        return fail(bad(fmt::format("unknown object format \"{}\"", m.object_format)));
    // Read from storage and sent to the server: only well-formed object ids go.
    if (m.walk_anchor && !git::valid_walk_anchor(*m.walk_anchor, m.object_format))
        return fail(bad(fmt::format("walk_anchor is not a {} commit with at most {} parents", m.object_format,
                                    git::k_max_anchor_parents)));
    if (auto known = parse_snapshot_kind(kind))
        m.kind = *known;
    else
        return fail(bad(fmt::format("unknown kind \"{}\"", kind)));
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
