#include "snapshotter/git/pack_scan.hpp"

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/object_table.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <fmt/format.h>
#include <libdeflate.h>
#include <limits>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <zlib.h>

namespace snapshotter::git {
namespace {

constexpr std::size_t k_pack_header_size = 12;
constexpr std::size_t k_inflate_chunk = 64U << 10;
// What is kept of a commit too large to keep whole: its header lines come first.
constexpr std::size_t k_commit_prefix = 64U << 10;
// What is kept of a delta that is not applied: enough for its two size varints.
constexpr std::size_t k_delta_prefix = 32;

enum : std::uint8_t {
    k_commit = 1,
    k_tree = 2,
    k_blob = 3,
    k_tag = 4,
    k_ofs_delta = 6,
    k_ref_delta = 7,
};

std::string_view type_name(std::uint8_t type) {
    return type == k_commit ? "commit" : type == k_blob ? "blob" : type == k_tree ? "tree" : "tag";
}

std::string hex(std::string_view raw) {
    return to_hex({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
}

// A little-endian base-128 size, as a delta's header holds it.
std::optional<std::uint64_t> read_delta_size(std::string_view data, std::size_t& pos) {
    std::uint64_t value = 0;
    for (unsigned shift = 0; pos < data.size() && shift < 64; shift += 7) {
        auto c = static_cast<unsigned char>(data[pos++]);
        value |= std::uint64_t{c & 0x7fU} << shift;
        if ((c & 0x80U) == 0)
            return value;
    }
    return std::nullopt;
}

// The two sizes at the start of a delta: the base's, then the result's.
struct DeltaSizes {
    std::uint64_t base = 0;
    std::uint64_t result = 0;
    std::size_t header = 0;
};

Result<DeltaSizes> delta_sizes(std::string_view delta) {
    std::size_t pos = 0;
    auto base = read_delta_size(delta, pos);
    auto result = base ? read_delta_size(delta, pos) : std::nullopt;
    if (!result)
        return fail(Error::integrity("pack delta has a malformed size header"));
    return DeltaSizes{*base, *result, pos};
}

} // namespace

Result<std::vector<std::string>> commit_parents(std::string_view content, std::string_view object_format) {
    const std::size_t oid_len = oid_hex_length(object_format);
    std::vector<std::string> parents;
    std::size_t pos = 0;
    bool first = true;
    while (pos < content.size()) {
        auto nl = content.find('\n', pos);
        std::string_view line = content.substr(pos, nl == std::string_view::npos ? content.npos : nl - pos);
        if (first) {
            if (!line.starts_with("tree ") || !is_valid_oid(line.substr(5), object_format))
                return fail(Error::integrity("commit does not start with a tree line"));
            first = false;
        } else if (line.starts_with("parent ")) {
            auto oid = line.substr(7);
            if (oid.size() != oid_len || !is_valid_oid(oid, object_format))
                return fail(Error::integrity("commit has a malformed parent line"));
            parents.emplace_back(oid);
        } else {
            return parents; // author, committer, ...: the parents are all before
        }
        if (nl == std::string_view::npos)
            break;
        pos = nl + 1;
    }
    if (first)
        return fail(Error::integrity("commit does not start with a tree line"));
    return parents;
}

Result<std::string> apply_delta(std::string_view base, std::string_view delta, std::uint64_t max_result) {
    auto sizes = delta_sizes(delta);
    if (!sizes)
        return fail(sizes.error());
    if (sizes->base != base.size())
        return fail(Error::integrity("pack delta names a base of another size"));
    if (sizes->result > max_result)
        return fail(Error::integrity("pack delta result is larger than allowed"));
    std::string out;
    out.reserve(static_cast<std::size_t>(sizes->result));
    std::size_t pos = sizes->header;
    while (pos < delta.size()) {
        auto op = static_cast<unsigned char>(delta[pos++]);
        if ((op & 0x80U) != 0) {
            // Copy from the base: offset and size bytes present per the op's low bits.
            std::uint64_t offset = 0, size = 0;
            for (unsigned i = 0; i < 4; ++i)
                if ((op & (1U << i)) != 0) {
                    if (pos >= delta.size())
                        return fail(Error::integrity("pack delta copy op is truncated"));
                    offset |= std::uint64_t{static_cast<unsigned char>(delta[pos++])} << (8 * i);
                }
            for (unsigned i = 0; i < 3; ++i)
                if ((op & (0x10U << i)) != 0) {
                    if (pos >= delta.size())
                        return fail(Error::integrity("pack delta copy op is truncated"));
                    size |= std::uint64_t{static_cast<unsigned char>(delta[pos++])} << (8 * i);
                }
            if (size == 0)
                size = 0x10000;
            if (offset > base.size() || size > base.size() - offset || size > sizes->result - out.size())
                return fail(Error::integrity("pack delta copies outside its base or result"));
            out.append(base.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(size)));
        } else if (op != 0) {
            if (op > delta.size() - pos || op > sizes->result - out.size())
                return fail(Error::integrity("pack delta insert op is truncated or too long"));
            out.append(delta.substr(pos, op));
            pos += op;
        } else {
            return fail(Error::integrity("pack delta has a reserved op"));
        }
    }
    if (out.size() != sizes->result)
        return fail(Error::integrity("pack delta result has the wrong size"));
    return out;
}

// What a cached object costs beyond its content: the map node, the string
// and the order entry (counted against PackScanOptions::cache_bytes, so that
// many small objects cannot hold several times the bound).
constexpr std::size_t k_cache_entry_overhead = 96;

struct PackScanner::Impl {
    // What the current entry is, and what is done with its inflated bytes.
    struct Entry {
        std::uint64_t offset = 0;
        std::uint8_t type = 0;
        std::uint64_t size = 0; // inflated size the header declares
        std::uint64_t inflated = 0;
        std::size_t keep = 0;          // bytes of output kept in `content`
        std::optional<Digest> digest;  // the object id, for a commit or small blob
        std::uint64_t base_offset = 0; // a delta's base, when it is a known object
        bool base_known = false;
        std::string base_raw_oid; // a REF_DELTA's base
        std::string content;
        bool streaming = false; // zlib inflates it (libdeflate did not, or it is too large)
        std::size_t tried = 0;  // bytes at hand when libdeflate last failed on it
    };

    // What inflate_whole() did with the current entry.
    enum class Whole { done, wait, stream };

    struct FreeDecompressor {
        void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
    };

    enum class State { header, entry_header, entry_data, trailer, failed };

    PackScanOptions options;
    PackScanCallbacks callbacks;
    std::size_t raw_len = 0;
    z_stream zs{};
    bool zs_ready = false;
    std::unique_ptr<libdeflate_decompressor, FreeDecompressor> whole_inflater;
    std::vector<unsigned char> whole_out; // libdeflate's output, grown to the largest entry so inflated
    bool final = false;                   // finish() was called: no more bytes will come
    State state = State::header;
    std::optional<Error> failure;
    std::string in;              // bytes not consumed yet
    std::uint64_t in_offset = 0; // pack offset of in[0]
    std::uint64_t entries_done = 0;
    std::uint64_t trailer_bytes = 0;
    Entry entry;
    std::array<unsigned char, k_inflate_chunk> out_buffer{};
    PackScanSummary summary;
    std::optional<ObjectTable> known; // every object reported (made with raw_len)
    std::unordered_map<std::uint64_t, std::string> cache;
    std::deque<std::uint64_t> cache_order;
    std::size_t cache_size = 0;

    ~Impl() {
        if (zs_ready)
            inflateEnd(&zs);
    }

    Status stop(Error error) {
        state = State::failed;
        failure = error;
        return fail(std::move(error));
    }

    // Record a reported object; its content joins the cache when `whole`.
    void remember(std::uint64_t offset, std::uint8_t type, std::string_view raw_oid, std::string content,
                  bool whole) {
        if (known->size() >= options.max_known) {
            ++summary.forgotten; // from now on a delta on an unknown base is reported unresolved
            return;
        }
        known->add(offset, type, raw_oid);
        if (!whole || content.size() + k_cache_entry_overhead > options.cache_bytes)
            return;
        cache_size += content.size() + k_cache_entry_overhead;
        cache.emplace(offset, std::move(content));
        cache_order.push_back(offset);
        while (cache_size > options.cache_bytes && !cache_order.empty()) {
            auto it = cache.find(cache_order.front());
            cache_order.pop_front();
            if (it != cache.end()) {
                cache_size -= it->second.size() + k_cache_entry_overhead;
                cache.erase(it);
            }
        }
    }

    // Drop the cached content of every object of `type` (no longer followed:
    // a delta on one is skipped, as its result is not reported either).
    void forget_cached(std::uint8_t type) {
        for (auto it = cache.begin(); it != cache.end();) {
            if (known->type(*known->find_offset(it->first)) != type) {
                ++it;
                continue;
            }
            cache_size -= it->second.size() + k_cache_entry_overhead;
            it = cache.erase(it);
        }
    }

    // Parse the 12-byte pack header at in[pos]; false while it is incomplete.
    Result<bool> parse_header(std::size_t& pos) {
        if (in.size() - pos < k_pack_header_size)
            return false;
        auto* p = reinterpret_cast<const unsigned char*>(in.data() + pos);
        if (std::string_view(in.data() + pos, 4) != "PACK")
            return fail(Error::integrity("pack does not start with \"PACK\""));
        auto be32 = [](const unsigned char* q) {
            return (std::uint32_t{q[0]} << 24) | (std::uint32_t{q[1]} << 16) | (std::uint32_t{q[2]} << 8) |
                   std::uint32_t{q[3]};
        };
        summary.version = be32(p + 4);
        if (summary.version != 2 && summary.version != 3)
            return fail(Error::integrity(fmt::format("unsupported pack version {}", summary.version)));
        summary.object_count = be32(p + 8);
        std::uint64_t max =
            options.max_objects == 0 ? std::numeric_limits<std::uint32_t>::max() : options.max_objects;
        if (summary.object_count > max)
            return fail(Error::integrity(
                fmt::format("pack holds {} objects, more than the {} allowed", summary.object_count, max)));
        pos += k_pack_header_size;
        state = summary.object_count == 0 ? State::trailer : State::entry_header;
        return true;
    }

    // Parse an entry header at in[pos]; false while it is incomplete.
    Result<bool> parse_entry_header(std::size_t& pos) {
        std::size_t p = pos;
        auto next = [&]() -> std::optional<unsigned char> {
            if (p >= in.size())
                return std::nullopt;
            return static_cast<unsigned char>(in[p++]);
        };
        auto c = next();
        if (!c)
            return false;
        Entry e;
        e.offset = in_offset + pos;
        e.type = static_cast<std::uint8_t>((*c >> 4) & 7U);
        e.size = *c & 15U;
        unsigned shift = 4;
        while ((*c & 0x80U) != 0) {
            c = next();
            if (!c)
                return false;
            if (shift > 57)
                return fail(Error::integrity("pack entry size is too large"));
            e.size |= std::uint64_t{*c & 0x7fU} << shift;
            shift += 7;
        }
        if (e.type == 0 || e.type == 5)
            return fail(
                Error::integrity(fmt::format("pack entry at {} has invalid type {}", e.offset, e.type)));
        if (e.type == k_ofs_delta) {
            c = next();
            if (!c)
                return false;
            std::uint64_t distance = *c & 0x7fU;
            while ((*c & 0x80U) != 0) {
                c = next();
                if (!c)
                    return false;
                if (distance >= (std::uint64_t{1} << 56))
                    return fail(Error::integrity("pack delta offset is too large"));
                distance = ((distance + 1) << 7) | (*c & 0x7fU);
            }
            if (distance == 0 || distance > e.offset - k_pack_header_size)
                return fail(Error::integrity(
                    fmt::format("pack delta at {} names a base outside the pack", e.offset)));
            e.base_offset = e.offset - distance;
            e.base_known = known->find_offset(e.base_offset).has_value();
        } else if (e.type == k_ref_delta) {
            if (in.size() - p < raw_len)
                return false;
            e.base_raw_oid = in.substr(p, raw_len);
            p += raw_len;
            if (auto at = known->find_oid(e.base_raw_oid)) {
                e.base_offset = *at;
                e.base_known = true;
            }
        }
        if (callbacks.following && (options.report_commits || options.max_tree_size > 0)) {
            const PackFollow follow = callbacks.following();
            if (options.report_commits && !follow.commits) {
                options.report_commits = false;
                forget_cached(k_commit);
            }
            if (options.max_tree_size > 0 && !follow.trees) {
                options.max_tree_size = 0;
                forget_cached(k_tree);
            }
        }
        // What to keep and hash of its bytes.
        if (e.type == k_commit) {
            e.keep = static_cast<std::size_t>(std::min<std::uint64_t>(
                e.size, e.size <= options.max_object_size ? e.size : k_commit_prefix));
            if (options.report_commits)
                e.digest.emplace(options.object_format);
        } else if ((e.type == k_blob && options.max_blob_size > 0 && e.size <= options.max_blob_size) ||
                   (e.type == k_tree && options.max_tree_size > 0 && e.size <= options.max_tree_size)) {
            e.keep = static_cast<std::size_t>(e.size);
            e.digest.emplace(options.object_format);
        } else if (e.type == k_ofs_delta || e.type == k_ref_delta) {
            ++summary.deltas;
            if (e.base_known && e.size <= options.max_object_size)
                e.keep = static_cast<std::size_t>(e.size);
            else if (e.base_known || e.type == k_ref_delta || summary.forgotten > 0)
                e.keep = static_cast<std::size_t>(std::min<std::uint64_t>(e.size, k_delta_prefix));
        }
        if (e.digest)
            e.digest->update(fmt::format("{} {}", type_name(e.type), e.size) + std::string(1, '\0'));
        e.content.reserve(e.keep);
        entry = std::move(e);
        pos = p;
        state = State::entry_data;
        return true;
    }

    // Take `out`, the next inflated bytes of the current entry: hash and keep
    // what is asked for; fails when the entry inflates past its declared size.
    Status take_output(std::string_view out) {
        if (out.size() > entry.size - entry.inflated)
            return fail(Error::integrity(fmt::format("pack entry at {} inflates to more than its {} bytes",
                                                     entry.offset, entry.size)));
        if (entry.digest)
            entry.digest->update(out);
        if (entry.content.size() < entry.keep)
            entry.content.append(out.substr(0, entry.keep - entry.content.size()));
        entry.inflated += out.size();
        return {};
    }

    // Inflate the current entry whole with libdeflate if its stream is among
    // the bytes from in[pos]: done, wait for more bytes, or stream it through
    // zlib from its start (too large, or libdeflate failed on enough bytes).
    Result<Whole> inflate_whole(std::size_t& pos) {
        if (options.max_whole_inflate == 0 || entry.size > options.max_whole_inflate)
            return Whole::stream;
        const std::size_t at_hand = in.size() - pos;
        // No valid stream zlib writes for the entry is longer than this.
        const std::uint64_t bound = compressBound(static_cast<uLong>(entry.size));
        if (!final && at_hand < bound && at_hand < 2 * entry.tried)
            return Whole::wait; // too few new bytes to be worth another try
        const auto size = static_cast<std::size_t>(entry.size);
        if (whole_out.size() < std::max<std::size_t>(size, 1))
            whole_out.resize(std::max<std::size_t>(size, 1));
        std::size_t used = 0;
        // With no actual_out_nbytes_ret, success means exactly `size` bytes.
        const libdeflate_result result = libdeflate_zlib_decompress_ex(
            whole_inflater.get(), in.data() + pos, at_hand, whole_out.data(), size, &used, nullptr);
        if (result != LIBDEFLATE_SUCCESS) {
            // Truncated, corrupt or of another size: zlib tells which once it
            // can, from the entry's start (nothing of it is consumed yet).
            if (final || at_hand >= bound)
                return Whole::stream;
            entry.tried = at_hand;
            return Whole::wait;
        }
        if (auto s = take_output(std::string_view(reinterpret_cast<const char*>(whole_out.data()), size)); !s)
            return fail(s.error());
        pos += used;
        ++summary.whole;
        return Whole::done;
    }

    // Inflate the current entry from in[pos]; false while more bytes are needed.
    Result<bool> inflate_entry(std::size_t& pos) {
        if (!entry.streaming) {
            auto whole = inflate_whole(pos);
            if (!whole)
                return fail(whole.error());
            if (*whole != Whole::stream)
                return *whole == Whole::done;
            if (inflateReset(&zs) != Z_OK)
                return fail(Error::internal("zlib inflateReset failed"));
            entry.streaming = true;
        }
        while (true) {
            zs.next_in = reinterpret_cast<Bytef*>(in.data() + pos);
            zs.avail_in =
                static_cast<uInt>(std::min<std::size_t>(in.size() - pos, std::numeric_limits<uInt>::max()));
            zs.next_out = out_buffer.data();
            zs.avail_out = static_cast<uInt>(out_buffer.size());
            const uInt given = zs.avail_in;
            int ret = inflate(&zs, Z_NO_FLUSH);
            pos += given - zs.avail_in;
            std::size_t produced = out_buffer.size() - zs.avail_out;
            if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
                return fail(
                    Error::integrity(fmt::format("pack entry at {} is not valid zlib data", entry.offset)));
            if (auto s =
                    take_output(std::string_view(reinterpret_cast<const char*>(out_buffer.data()), produced));
                !s)
                return fail(s.error());
            if (ret == Z_STREAM_END) {
                if (entry.inflated != entry.size)
                    return fail(Error::integrity(fmt::format("pack entry at {} inflates to {} bytes, not {}",
                                                             entry.offset, entry.inflated, entry.size)));
                return true;
            }
            if (produced == 0 && pos == in.size())
                return false; // needs more input
            if (ret == Z_BUF_ERROR && produced == 0)
                return false;
        }
    }

    // Report the inflated entry and remember what a later delta may need.
    Status finish_entry() {
        Entry e = std::move(entry);
        if (e.type == k_commit || e.type == k_blob || e.type == k_tree) {
            if (!e.digest)
                return {};
            const bool whole = e.content.size() == e.size;
            return report(e.offset, e.type, e.digest->raw_digest(), std::move(e.content), whole);
        }
        if (e.type != k_ofs_delta && e.type != k_ref_delta)
            return {};
        // A delta on a tree, a tag or a large blob: nothing to report, unless
        // reported objects were forgotten (max_known): its base may be one.
        if (!e.base_known && e.type == k_ofs_delta && summary.forgotten == 0)
            return {};
        auto sizes = delta_sizes(e.content);
        if (!sizes)
            return fail(
                Error::integrity(fmt::format("pack entry at {}: {}", e.offset, sizes.error().message)));
        if (!e.base_known)
            return unresolved(e.type == k_ref_delta ? hex(e.base_raw_oid) : std::string{}, sizes->result);
        const std::size_t base = *known->find_offset(e.base_offset);
        const std::uint8_t base_type = known->type(base);
        if (base_type == k_blob && sizes->result > options.max_blob_size)
            return {}; // grew past the blobs asked for
        if (base_type == k_tree && sizes->result > options.max_tree_size)
            return {}; // grew past the trees asked for
        if (base_type == k_commit && !options.report_commits)
            return {};
        auto cached = cache.find(e.base_offset);
        if (e.content.size() != e.size ||
            (base_type == k_commit && sizes->result > options.max_object_size)) {
            ++summary.skipped;
            return {};
        }
        if (cached == cache.end())
            return unresolved(hex(known->raw_oid(base)), sizes->result);
        auto result = apply_delta(cached->second, e.content, sizes->result);
        if (!result)
            return fail(
                Error::integrity(fmt::format("pack entry at {}: {}", e.offset, result.error().message)));
        Digest digest(options.object_format);
        digest.update(fmt::format("{} {}", type_name(base_type), result->size()) + std::string(1, '\0'));
        digest.update(*result);
        return report(e.offset, base_type, digest.raw_digest(), std::move(*result), true);
    }

    Status unresolved(std::string base_oid, std::uint64_t result_size) {
        ++summary.unresolved;
        if (callbacks.on_unresolved)
            return callbacks.on_unresolved(UnresolvedDelta{std::move(base_oid), result_size});
        return {};
    }

    Status report(std::uint64_t offset, std::uint8_t type, std::string_view raw_oid, std::string content,
                  bool whole) {
        std::string oid = hex(raw_oid);
        if (type == k_commit) {
            auto parents = commit_parents(content, options.object_format);
            if (!parents)
                return fail(Error::integrity(fmt::format("commit {}: {}", oid, parents.error().message)));
            ++summary.commits;
            if (callbacks.on_commit)
                if (auto s = callbacks.on_commit(
                        ScannedCommit{oid, std::move(*parents),
                                      std::string(content.substr(5, oid_hex_length(options.object_format)))});
                    !s)
                    return s;
        } else if (type == k_tree) {
            ++summary.trees;
            if (callbacks.on_tree)
                if (auto s = callbacks.on_tree(ScannedTree{oid, content}); !s)
                    return s;
        } else {
            ++summary.blobs;
            if (callbacks.on_blob)
                if (auto s = callbacks.on_blob(ScannedBlob{oid, content}); !s)
                    return s;
        }
        remember(offset, type, raw_oid, std::move(content), whole);
        return {};
    }

    // Consume what `in` holds as far as it goes.
    Status run() {
        std::size_t pos = 0;
        Status status;
        while (status) {
            if (state == State::header) {
                auto r = parse_header(pos);
                if (!r)
                    status = fail(r.error());
                else if (!*r)
                    break;
            } else if (state == State::entry_header) {
                auto r = parse_entry_header(pos);
                if (!r)
                    status = fail(r.error());
                else if (!*r)
                    break;
            } else if (state == State::entry_data) {
                auto r = inflate_entry(pos);
                if (!r) {
                    status = fail(r.error());
                } else if (!*r) {
                    break;
                } else {
                    status = finish_entry();
                    ++entries_done;
                    state = entries_done == summary.object_count ? State::trailer : State::entry_header;
                }
            } else if (state == State::trailer) {
                trailer_bytes += in.size() - pos;
                pos = in.size();
                if (trailer_bytes > raw_len)
                    status = fail(Error::integrity("pack has bytes after its trailer"));
                break;
            } else {
                break;
            }
        }
        in.erase(0, pos);
        in_offset += pos;
        if (!status)
            return stop(status.error());
        return {};
    }
};

PackScanner::PackScanner(PackScanOptions options, PackScanCallbacks callbacks)
    : m_impl(std::make_unique<Impl>()) {
    m_impl->raw_len = oid_hex_length(options.object_format) / 2;
    if (m_impl->raw_len == 0)
        throw std::invalid_argument("unknown object format for a pack scan");
    m_impl->known.emplace(m_impl->raw_len);
    m_impl->options = std::move(options);
    m_impl->callbacks = std::move(callbacks);
    if (inflateInit(&m_impl->zs) != Z_OK)
        throw std::runtime_error("cannot initialise zlib");
    m_impl->zs_ready = true;
    m_impl->whole_inflater.reset(libdeflate_alloc_decompressor());
    if (!m_impl->whole_inflater)
        throw std::runtime_error("cannot initialise libdeflate");
}
PackScanner::~PackScanner() = default;
PackScanner::PackScanner(PackScanner&&) noexcept = default;
PackScanner& PackScanner::operator=(PackScanner&&) noexcept = default;

Status PackScanner::feed(std::span<const std::byte> data) {
    return feed(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

Status PackScanner::feed(std::string_view data) {
    Impl& m = *m_impl;
    if (m.failure)
        return fail(*m.failure);
    m.summary.pack_size += data.size();
    m.in.append(data);
    return m.run();
}

Result<PackScanSummary> PackScanner::finish() {
    Impl& m = *m_impl;
    if (m.failure)
        return fail(*m.failure);
    m.final = true;
    if (auto s = m.run(); !s)
        return fail(s.error());
    if (m.state != Impl::State::trailer || m.trailer_bytes != m.raw_len)
        return fail(
            Error::integrity(fmt::format("pack is truncated after {} of {} objects ({} bytes)",
                                         m.entries_done, m.summary.object_count, m.summary.pack_size)));
    return m.summary;
}

} // namespace snapshotter::git
