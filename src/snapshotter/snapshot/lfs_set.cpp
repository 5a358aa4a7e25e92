#include "snapshotter/snapshot/lfs_set.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/json.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace snapshotter::snapshot {

using nlohmann::json;

namespace {

constexpr std::size_t k_max_lfsconfig_url = 8192;

Error bad(std::string_view what) {
    return Error::integrity(fmt::format("manifest: lfs: {}", what));
}

bool is_missing_reason(std::string_view reason) {
    return reason == "not_found" || reason == "hash_mismatch" ||
           (reason.starts_with("error: ") && reason.size() <= 1024);
}

// `j` as an LfsObject: {"oid": 64 hex, "size": 0..k_max_lfs_object_size}.
Result<LfsObject> object_from_json(const json& j) {
    if (!j.is_object())
        return fail(bad("an object entry is not an object"));
    auto oid = j.find("oid");
    auto size = j.find("size");
    if (oid == j.end() || !oid->is_string() || !layout::is_lfs_oid(oid->get_ref<const std::string&>()))
        return fail(bad("an object has no valid oid (64 lowercase hex digits)"));
    std::optional<std::uint64_t> n;
    if (size != j.end())
        n = json_integer<std::uint64_t>(*size);
    if (!n || *n > k_max_lfs_object_size)
        return fail(bad(fmt::format("object {} has no valid size", oid->get<std::string>())));
    return LfsObject{oid->get<std::string>(), *n};
}

// Check that `objects` are sorted by oid without duplicates.
Status check_sorted(const std::vector<LfsObject>& objects) {
    for (std::size_t i = 1; i < objects.size(); ++i)
        if (!(objects[i - 1].oid < objects[i].oid))
            return fail(bad(fmt::format("objects are not sorted and unique at {}", objects[i].oid)));
    return {};
}

// The total size of `objects`, or an error past 2^64.
Result<std::uint64_t> total_bytes(const std::vector<LfsObject>& objects) {
    std::uint64_t total = 0;
    for (const auto& o : objects) {
        if (total > UINT64_MAX - o.size)
            return fail(bad("total size overflows"));
        total += o.size;
    }
    return total;
}

// A git object id in hex: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
bool is_hex_oid(const json& j) {
    if (!j.is_string())
        return false;
    const auto& s = j.get_ref<const std::string&>();
    return (s.size() == 40 || s.size() == 64) && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// The optional "lfsconfig" record of an "lfs" value.
Result<std::optional<LfsConfigRecord>> lfsconfig_from_json(const json& j) {
    auto it = j.find("lfsconfig");
    if (it == j.end())
        return std::nullopt;
    if (!it->is_object() || !is_hex_oid(it->value("head", json())) || !is_hex_oid(it->value("tree", json())))
        return fail(bad("lfsconfig needs a head and a tree object id"));
    LfsConfigRecord r{it->at("head").get<std::string>(), it->at("tree").get<std::string>(), "", std::nullopt};
    const json blob = it->value("blob", json());
    if (!blob.is_null() && !is_hex_oid(blob))
        return fail(bad("lfsconfig blob is not an object id"));
    if (!blob.is_null())
        r.blob = blob.get<std::string>();
    const json url = it->value("url", json());
    if (!url.is_null() && (!url.is_string() || url.get_ref<const std::string&>().empty() ||
                           url.get_ref<const std::string&>().size() > k_max_lfsconfig_url))
        return fail(bad("lfsconfig url is not a string of 1 to 8192 bytes"));
    if (!url.is_null())
        r.url = url.get<std::string>();
    return r;
}

json objects_to_json(const std::vector<LfsObject>& objects) {
    json out = json::array();
    for (const auto& o : objects)
        out.push_back({{"oid", o.oid}, {"size", o.size}});
    return out;
}

} // namespace

json lfs_set_to_json(const LfsSet& set) {
    json j = {{"count", set.count}, {"bytes", set.bytes}};
    if (set.set_key)
        j["set"] = {{"key", *set.set_key}, {"sha256", set.set_sha256.value_or("")}};
    else
        j["objects"] = objects_to_json(set.objects);
    json missing = json::array();
    for (const auto& m : set.missing)
        missing.push_back({{"oid", m.oid}, {"size", m.size}, {"reason", m.reason}});
    j["missing"] = std::move(missing);
    if (set.lfsconfig) {
        const auto& r = *set.lfsconfig;
        j["lfsconfig"] = {{"head", r.head},
                          {"tree", r.tree},
                          {"blob", r.blob.empty() ? json(nullptr) : json(r.blob)},
                          {"url", r.url ? json(*r.url) : json(nullptr)}};
    }
    return j;
}

Result<LfsSet> lfs_set_from_json(const json& j, std::string_view repository) {
    if (!j.is_object())
        return fail(bad("not an object"));
    LfsSet set;
    const auto count = j.find("count");
    const auto bytes = j.find("bytes");
    if (count == j.end() || !json_integer<std::uint64_t>(*count) ||
        count->get<std::uint64_t>() > k_max_lfs_objects)
        return fail(bad(fmt::format("count is not an integer between 0 and {}", k_max_lfs_objects)));
    if (bytes == j.end() || !json_integer<std::uint64_t>(*bytes))
        return fail(bad("bytes is not a non-negative integer"));
    set.count = count->get<std::uint64_t>();
    set.bytes = bytes->get<std::uint64_t>();
    const auto objects = j.find("objects");
    const auto set_ref = j.find("set");
    if ((objects == j.end()) == (set_ref == j.end()))
        return fail(bad("needs exactly one of objects and set"));
    if (objects != j.end()) {
        if (!objects->is_array() || objects->size() != set.count || set.count > k_lfs_inline_max)
            return fail(bad(fmt::format("objects must list all {} objects inline (at most {})", set.count,
                                        k_lfs_inline_max)));
        for (const auto& entry : *objects) {
            auto object = object_from_json(entry);
            if (!object)
                return fail(object.error());
            set.objects.push_back(std::move(*object));
        }
        if (auto s = check_sorted(set.objects); !s)
            return fail(s.error());
        auto total = total_bytes(set.objects);
        if (!total)
            return fail(total.error());
        if (*total != set.bytes)
            return fail(
                bad(fmt::format("bytes {} is not the sum of the objects' sizes {}", set.bytes, *total)));
    } else {
        if (!set_ref->is_object() || !set_ref->contains("key") || !set_ref->contains("sha256") ||
            !set_ref->at("key").is_string() || !set_ref->at("sha256").is_string())
            return fail(bad("set must be {\"key\": ..., \"sha256\": ...}"));
        auto key = set_ref->at("key").get<std::string>();
        auto sha = set_ref->at("sha256").get<std::string>();
        if (set.count <= k_lfs_inline_max)
            return fail(bad(fmt::format("a set of {} objects must be inline", set.count)));
        if (!layout::is_lfs_oid(sha) || key != layout::lfs_set_key(repository, sha) ||
            !layout::is_within(key, repository, layout::Area::lfs))
            return fail(bad(fmt::format("set key {:?} is not {}sets/<sha256>.json of repository {}", key,
                                        layout::lfs_prefix(repository), repository)));
        if (set.bytes > set.count * k_max_lfs_object_size)
            return fail(bad("bytes is larger than count objects can hold"));
        set.set_key = std::move(key);
        set.set_sha256 = std::move(sha);
    }
    if (auto it = j.find("missing"); it != j.end()) {
        if (!it->is_array() || it->size() > set.count)
            return fail(bad("missing must be an array of at most count entries"));
        for (const auto& entry : *it) {
            auto object = object_from_json(entry);
            if (!object)
                return fail(object.error());
            auto reason = entry.find("reason");
            if (reason == entry.end() || !reason->is_string() ||
                !is_missing_reason(reason->get_ref<const std::string&>()))
                return fail(bad(fmt::format("missing object {} has no valid reason", object->oid)));
            if (!set.missing.empty() && !(set.missing.back().oid < object->oid))
                return fail(bad("missing objects are not sorted and unique"));
            if (!set.set_key &&
                !std::binary_search(set.objects.begin(), set.objects.end(), *object,
                                    [](const LfsObject& a, const LfsObject& b) { return a.oid < b.oid; }))
                return fail(bad(fmt::format("missing object {} is not in the set", object->oid)));
            set.missing.push_back({std::move(object->oid), object->size, reason->get<std::string>()});
        }
    }
    auto lfsconfig = lfsconfig_from_json(j);
    if (!lfsconfig)
        return fail(lfsconfig.error());
    set.lfsconfig = std::move(*lfsconfig);
    return set;
}

std::string serialize_lfs_objects(const std::vector<LfsObject>& objects) {
    std::string out = "{\"objects\":[\n";
    for (std::size_t i = 0; i < objects.size(); ++i)
        out += fmt::format("{{\"oid\":\"{}\",\"size\":{}}}{}\n", objects[i].oid, objects[i].size,
                           i + 1 < objects.size() ? "," : "");
    out += "]}\n";
    return out;
}

Result<std::vector<LfsObject>> parse_lfs_objects(std::string_view text) {
    auto parsed = parse_json_bounded(text, 4);
    if (!parsed)
        return fail(bad(fmt::format("set file: {}", parsed.error().message)));
    if (!parsed->is_object() || !parsed->contains("objects") || !parsed->at("objects").is_array())
        return fail(bad("set file has no objects array"));
    const auto& list = parsed->at("objects");
    if (list.size() > k_max_lfs_objects)
        return fail(bad(fmt::format("set file lists more than {} objects", k_max_lfs_objects)));
    std::vector<LfsObject> out;
    out.reserve(list.size());
    for (const auto& entry : list) {
        auto object = object_from_json(entry);
        if (!object)
            return fail(object.error());
        out.push_back(std::move(*object));
    }
    if (auto s = check_sorted(out); !s)
        return fail(s.error());
    return out;
}

Result<LfsSet> make_lfs_set(storage::Storage& storage, std::string_view repository,
                            std::vector<LfsObject> objects, std::vector<LfsMissing> missing) {
    if (objects.size() > k_max_lfs_objects)
        return fail(Error::integrity(fmt::format("{} LFS objects are more than a snapshot may record ({})",
                                                 objects.size(), k_max_lfs_objects)));
    if (auto s = check_sorted(objects); !s)
        return fail(s.error());
    auto total = total_bytes(objects);
    if (!total)
        return fail(total.error());
    std::sort(missing.begin(), missing.end(), [](const auto& a, const auto& b) { return a.oid < b.oid; });
    LfsSet set{objects.size(), *total, {}, std::nullopt, std::nullopt, std::move(missing)};
    if (objects.size() <= k_lfs_inline_max) {
        set.objects = std::move(objects);
        return set;
    }
    // Content-addressed: the same list written twice is the same object.
    const std::string text = serialize_lfs_objects(objects);
    const std::string sha = sha256_hex(text);
    const std::string key = layout::lfs_set_key(repository, sha);
    auto existing = storage.head(key);
    if (!existing)
        return fail(existing.error());
    if (!*existing || (*existing)->size != text.size()) {
        auto put = storage.put(key, text, Overwrite::yes);
        if (!put)
            return fail(put.error());
    }
    set.set_key = key;
    set.set_sha256 = sha;
    return set;
}

Result<std::vector<LfsObject>> lfs_objects_of(storage::Storage& storage, const Manifest& manifest) {
    if (!manifest.lfs)
        return std::vector<LfsObject>{};
    const LfsSet& set = *manifest.lfs;
    if (!set.set_key)
        return set.objects;
    if (auto s = layout::check_within(*set.set_key, manifest.repository, layout::Area::lfs,
                                      fmt::format("manifest {}", manifest.snapshot_id));
        !s)
        return fail(s.error());
    auto text = storage.get(*set.set_key, k_max_lfs_set_bytes);
    if (!text)
        return fail(text.error());
    if (sha256_hex(*text) != set.set_sha256.value_or(""))
        return fail(Error::integrity(fmt::format("LFS set {} does not match its SHA-256 in manifest {}",
                                                 *set.set_key, manifest.snapshot_id)));
    auto objects = parse_lfs_objects(*text);
    if (!objects)
        return fail(objects.error());
    auto total = total_bytes(*objects);
    if (!total)
        return fail(total.error());
    if (objects->size() != set.count || *total != set.bytes)
        return fail(Error::integrity(
            fmt::format("LFS set {} lists {} objects of {} bytes; manifest {} says {} of {}", *set.set_key,
                        objects->size(), *total, manifest.snapshot_id, set.count, set.bytes)));
    return objects;
}

} // namespace snapshotter::snapshot
