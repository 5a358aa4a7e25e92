// Tables: the content-addressed, gzip-compressed objects in which a version-2
// manifest keeps its large sets (refs, bundles, preserved, shallow), so that
// snapshots with the same sets (every unchanged night) share one object.
//
//   repos/<repo-key>/tables/<sha256>.json.gz
//
// <sha256> is the SHA-256 of the uncompressed canonical JSON (table_json(),
// manifest.hpp), so a key names exactly one content. A table is written
// before the manifest that names it, and only when storage does not hold it
// yet; gc removes a table no manifest names once it is idle for
// gc.min_age_s, prune removes the tables of the manifests it deleted that no
// manifest still names (the rules of bundles, leftovers.hpp and prune.cpp).
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstdint>
#include <string>

namespace snapshotter::snapshot {

// Largest uncompressed table read back (about 1.5 million refs): a table
// whose reference claims more is refused before it is downloaded.
inline constexpr std::uint64_t k_max_table_bytes = std::uint64_t{256} << 20;

// A table ready to store: its reference and its gzip bytes.
struct EncodedTable {
    TableRef ref;
    std::string gzip;
};

// The table of `manifest` (of repository `manifest.repository`): the
// canonical JSON of its sets, hashed and compressed.
Result<EncodedTable> encode_table(const Manifest& manifest);

// Store `table` of repository `name` unless it is `reused` (the parent's
// table, read and checked moments ago) or storage already holds an object of
// its size under its key; an object of another size is replaced (same key,
// same content, so a concurrent writer writes the same bytes).
Status put_table(storage::Storage& storage, const EncodedTable& table, const std::optional<TableRef>& reused);

// The uncompressed JSON of table `ref` of repository `name`, read from
// storage: its key must be the one layout makes for its digest (inside the
// repository's tables/), its stored and uncompressed sizes bounded by `ref`
// and k_max_table_bytes, and its SHA-256 equal to `ref.sha256`. Any
// violation, and a missing table, is an IntegrityError naming the key.
// Content read is cached in-process by key and digest (immutable by
// construction), so each table is read from storage once per process (a
// verify run checks each one once, as it does bundles); `fresh` asks for a
// read from storage whatever the cache holds.
enum class Fresh { no, yes };
Result<std::string> get_table(storage::Storage& storage, const std::string& name, const TableRef& ref,
                              Fresh fresh = Fresh::no);

// Fill the sets of version-2 `manifest` from its table (get_table, then
// apply_table); a version-1 manifest is left as it is.
Status load_table(storage::Storage& storage, Manifest& manifest, Fresh fresh = Fresh::no);

// gzip `data` (zlib, best compression).
Result<std::string> gzip_compress(std::string_view data);

// The bytes gzip stream `data` holds, refusing more than `max_bytes`
// (IntegrityError) and anything that is not one complete gzip stream.
Result<std::string> gzip_decompress(std::string_view data, std::uint64_t max_bytes);

} // namespace snapshotter::snapshot
