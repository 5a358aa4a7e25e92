#include "snapshotter/snapshot/tables.hpp"

#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/util/hash.hpp"

#include <fmt/format.h>
#include <map>
#include <memory>
#include <mutex>
#include <spdlog/spdlog.h>
#include <zlib.h>

namespace snapshotter::snapshot {
namespace {

// Bytes of table content the in-process cache holds at most; past it, the
// cache starts over (tables are read by manifests of one repository in a
// row: prune, gc and verify read many manifests naming few tables).
constexpr std::size_t k_cache_bytes = std::size_t{64} << 20;

// The largest gzip stream `raw` bytes can become (stored blocks: 5 bytes of
// framing per 16 KiB, plus the gzip header and trailer), with room to spare.
std::uint64_t gzip_bound(std::uint64_t raw) {
    return raw + raw / 1000 + 1024;
}

class TableCache {
  public:
    std::shared_ptr<const std::string> find(const std::string& id) {
        std::lock_guard lock(m_mutex);
        auto it = m_items.find(id);
        return it == m_items.end() ? nullptr : it->second;
    }
    void insert(const std::string& id, std::shared_ptr<const std::string> text) {
        std::lock_guard lock(m_mutex);
        if (m_bytes + text->size() > k_cache_bytes) {
            m_items.clear();
            m_bytes = 0;
        }
        if (text->size() > k_cache_bytes)
            return;
        m_bytes += text->size();
        m_items[id] = std::move(text);
    }

  private:
    std::mutex m_mutex;
    std::map<std::string, std::shared_ptr<const std::string>> m_items;
    std::size_t m_bytes = 0;
};

TableCache& cache() {
    static TableCache instance;
    return instance;
}

Error bad_table(const std::string& key, std::string_view what) {
    return Error::integrity(fmt::format("table {}: {}", key, what));
}

// `text`, the canonical JSON of a table of `name` holding `count` refs,
// hashed and compressed.
Result<EncodedTable> encode(const std::string& name, const std::string& text, std::uint64_t count) {
    auto gz = gzip_compress(text);
    if (!gz)
        return fail(gz.error());
    auto digest = sha256_hex(text);
    EncodedTable table{.ref = {.key = layout::table_key(name, digest),
                               .sha256 = digest,
                               .size = gz->size(),
                               .raw_size = text.size(),
                               .count = count},
                       .gzip = std::move(*gz)};
    return table;
}

// The sets of table `ref` of repository `name` read into `into`: the table,
// then the base of each delta down to a full table, applied from the full
// table up. `into.table_chain` lists the tables read.
Status read_chain(storage::Storage& storage, const std::string& name, const TableRef& ref, Manifest& into,
                  Fresh fresh) {
    std::vector<TableRef> chain{ref};
    std::vector<ParsedTable> tables;
    std::uint64_t total = 0;
    for (;;) {
        const TableRef at = chain.back();
        total += at.raw_size;
        if (total > k_max_chain_bytes)
            return fail(bad_table(at.key, fmt::format("its chain of tables holds more than {} bytes; refused",
                                                      k_max_chain_bytes)));
        auto text = get_table(storage, name, at, fresh);
        if (!text)
            return fail(chain.size() > 1 ? text.error().with_context(fmt::format("the base of table {}",
                                                                                 chain[chain.size() - 2].key))
                                         : text.error());
        auto parsed = parse_table(*text, name, k_max_table_depth);
        if (!parsed)
            return fail(bad_table(at.key, parsed.error().message));
        // Depths fall by one down to the full table at 0: the walk ends
        // within k_max_table_depth + 1 reads, and cannot loop.
        if (!tables.empty() && parsed->depth != tables.back().depth - 1)
            return fail(bad_table(at.key, fmt::format("depth {} as the base of a delta of depth {}",
                                                      parsed->depth, tables.back().depth)));
        const bool full = !parsed->base;
        if (!full)
            chain.push_back(*parsed->base);
        tables.push_back(std::move(*parsed));
        if (full)
            break;
    }
    for (std::size_t i = tables.size(); i-- > 0;) {
        if (auto s = apply_table(into, tables[i]); !s)
            return fail(bad_table(chain[i].key, s.error().message));
        if (into.refs.size() != chain[i].count)
            return fail(bad_table(chain[i].key, fmt::format("holds {} refs, its reference says {}",
                                                            into.refs.size(), chain[i].count)));
    }
    into.table_chain = std::move(chain);
    return {};
}

// Apply `delta` to the sets of `base` as a reader will: they must become
// those of `manifest` (a delta that does not would corrupt every snapshot above it).
Status check_delta(const Manifest& base, const EncodedTable& delta, const Manifest& manifest) {
    auto text = gzip_decompress(delta.gzip, delta.ref.raw_size);
    if (!text)
        return fail(text.error());
    auto parsed = parse_table(*text, manifest.repository, k_max_table_depth);
    if (!parsed)
        return fail(parsed.error());
    Manifest applied = base;
    if (auto s = apply_table(applied, *parsed); !s)
        return fail(s.error());
    if (!same_sets(applied, manifest))
        return fail(Error::internal(fmt::format("{}: the delta table {} does not rebuild the snapshot's sets",
                                                manifest.repository, delta.ref.key)));
    return {};
}

} // namespace

Result<std::string> gzip_compress(std::string_view data) {
    z_stream z{};
    // 15 window bits + 16: a gzip header (no name, mtime 0), so equal input gives equal bytes.
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return fail(Error::internal("zlib: deflateInit2 failed"));
    std::string out(deflateBound(&z, data.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    const auto written = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END)
        return fail(Error::internal(fmt::format("zlib: deflate failed ({})", rc)));
    out.resize(written);
    return out;
}

Result<std::string> gzip_decompress(std::string_view data, std::uint64_t max_bytes) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return fail(Error::internal("zlib: inflateInit2 failed"));
    std::string out;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    char buffer[64 * 1024];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        z.next_out = reinterpret_cast<Bytef*>(buffer);
        z.avail_out = sizeof buffer;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            return fail(Error::integrity(fmt::format("not a valid gzip stream (zlib {})", rc)));
        }
        const std::size_t produced = sizeof buffer - z.avail_out;
        if (out.size() + produced > max_bytes) {
            inflateEnd(&z);
            return fail(Error::integrity(fmt::format("inflates past {} bytes; refused", max_bytes)));
        }
        out.append(buffer, produced);
        if (rc == Z_OK && produced == 0 && z.avail_in == 0) {
            inflateEnd(&z);
            return fail(Error::integrity("the gzip stream is truncated"));
        }
    }
    const bool trailing = z.avail_in != 0;
    inflateEnd(&z);
    if (trailing)
        return fail(Error::integrity("bytes after the end of the gzip stream"));
    return out;
}

Result<EncodedTable> encode_table(const Manifest& manifest) {
    auto text = table_json(manifest);
    if (!text)
        return fail(text.error());
    return encode(manifest.repository, *text, manifest.refs.size());
}

Result<EncodedTable> encode_delta(const Manifest& base, const Manifest& manifest) {
    if (base.table_chain.empty())
        return fail(Error::internal("a delta table needs its base's chain"));
    const auto depth = static_cast<int>(base.table_chain.size());
    auto text = delta_table_json(base, base.table_chain.front(), depth, manifest);
    if (!text)
        return fail(text.error());
    return encode(manifest.repository, *text, manifest.refs.size());
}

TableForm choose_table_form(const std::vector<TableRef>& base_chain, bool same_sets, const TableRef& delta,
                            SnapshotKind kind) {
    if (base_chain.empty())
        return TableForm::full;
    if (same_sets)
        return TableForm::reuse;
    if (kind == SnapshotKind::full)
        return TableForm::full;
    // The base is at depth base_chain.size() - 1; the delta one deeper.
    if (base_chain.size() > static_cast<std::size_t>(k_max_table_depth))
        return TableForm::full;
    std::uint64_t deltas = delta.size;
    std::uint64_t raw = delta.raw_size;
    for (std::size_t i = 0; i < base_chain.size(); ++i) {
        raw += base_chain[i].raw_size;
        if (i + 1 < base_chain.size())
            deltas += base_chain[i].size;
    }
    if (raw > k_max_chain_bytes)
        return TableForm::full;
    return deltas <= k_max_delta_bytes_ratio * base_chain.back().size ? TableForm::delta : TableForm::full;
}

Status publish_table(storage::Storage& storage, Manifest& manifest, const std::optional<TableRef>& base) {
    // 1. The base's sets as a reader gets them (none for a first or version-1 parent).
    std::optional<Manifest> from;
    if (base) {
        Manifest read;
        read.repository = manifest.repository;
        if (auto s = read_chain(storage, manifest.repository, *base, read, Fresh::no); s)
            from = std::move(read);
        else
            spdlog::warn("{}: the parent's table cannot be read back ({}); writing a full table",
                         manifest.repository, s.error().message);
    }
    const bool same = from && same_sets(*from, manifest);
    // 2. A delta while it is small and the chain short; checked by applying it
    //    as a reader will before it is stored.
    std::optional<EncodedTable> delta;
    if (from && !same) {
        auto encoded = encode_delta(*from, manifest);
        if (!encoded)
            return fail(encoded.error());
        delta = std::move(*encoded);
    }
    const auto form = choose_table_form(from ? from->table_chain : std::vector<TableRef>{}, same,
                                        delta ? delta->ref : TableRef{}, manifest.kind);
    if (form == TableForm::reuse) {
        manifest.table = *base;
        manifest.table_chain = from->table_chain;
        return {};
    }
    std::vector<TableRef> chain;
    std::optional<EncodedTable> table;
    if (form == TableForm::delta) {
        if (auto s = check_delta(*from, *delta, manifest); !s)
            return fail(s.error());
        chain = from->table_chain;
        table = std::move(delta);
    } else {
        auto full = encode_table(manifest);
        if (!full)
            return fail(full.error());
        table = std::move(*full);
    }
    chain.insert(chain.begin(), table->ref);
    // 3. Store it, written again even when present: its age restarts, so gc
    //    (which takes only idle orphans) and prune leave it to the manifest about to name it.
    if (auto s = storage.put(table->ref.key, table->gzip, Overwrite::yes); !s)
        return fail(s.error().with_context(fmt::format("table {}", table->ref.key)));
    manifest.table = table->ref;
    manifest.table_chain = std::move(chain);
    return {};
}

Result<std::string> get_table(storage::Storage& storage, const std::string& name, const TableRef& ref,
                              Fresh fresh) {
    if (auto s = layout::check_within(ref.key, name, layout::Area::tables, "manifest's table"); !s)
        return fail(s.error());
    if (ref.key != layout::table_key(name, ref.sha256))
        return fail(bad_table(ref.key, fmt::format("the key does not name its SHA-256 {}", ref.sha256)));
    if (ref.raw_size > k_max_table_bytes)
        return fail(bad_table(ref.key, fmt::format("claims {} bytes, more than the {} a table may hold",
                                                   ref.raw_size, k_max_table_bytes)));
    const std::string id = ref.key + "@" + ref.sha256;
    if (fresh == Fresh::no)
        if (auto cached = cache().find(id); cached && cached->size() == ref.raw_size)
            return *cached;
    // Stop at the bound: a stored object larger than its content can compress to is hostile.
    std::string stored;
    const auto bound = gzip_bound(ref.raw_size);
    auto read = storage.read(ref.key, [&](std::span<const std::byte> chunk) -> Status {
        if (stored.size() + chunk.size() > bound)
            return fail(bad_table(
                ref.key, fmt::format("larger than the {} bytes its content allows; stopped reading", bound)));
        stored.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return {};
    });
    if (!read) {
        if (read.error().kind == ErrorKind::NotFound)
            return fail(bad_table(ref.key, "missing"));
        if (read.error().kind == ErrorKind::Integrity)
            return fail(read.error());
        return fail(read.error().with_context(fmt::format("table {}", ref.key)));
    }
    auto text = gzip_decompress(stored, ref.raw_size);
    if (!text)
        return fail(bad_table(ref.key, text.error().message));
    if (text->size() != ref.raw_size)
        return fail(
            bad_table(ref.key, fmt::format("{} bytes, the manifest says {}", text->size(), ref.raw_size)));
    if (auto digest = sha256_hex(*text); digest != ref.sha256)
        return fail(
            bad_table(ref.key, fmt::format("SHA-256 mismatch (manifest {}, stored {})", ref.sha256, digest)));
    cache().insert(id, std::make_shared<const std::string>(*text));
    return std::move(*text);
}

Status load_table(storage::Storage& storage, Manifest& manifest, Fresh fresh) {
    if (!manifest.table)
        return {};
    return read_chain(storage, manifest.repository, *manifest.table, manifest, fresh);
}

} // namespace snapshotter::snapshot
