// Tables: the content-addressed, gzip-compressed objects in which a manifest
// (version 2, 3 or 4) keeps its large sets (refs, bundles, preserved, shallow),
// so that snapshots with the same sets (every unchanged night) share one object.
//
//   repos/<repo-key>/tables/<sha256>.json.gz
//
// <sha256> is the SHA-256 of the uncompressed canonical JSON, so a key names
// exactly one content. A table is *full* (table_json(), manifest.hpp) or a
// *delta* (delta_table_json()): what changed against a base table, which it
// names by digest (so a chain can never loop) and whose depth is one less
// than its own (a full table is depth 0). A night on which a ref moved writes
// a delta of a few hundred bytes against the parent's table instead of a
// whole table; a full table is written again for a full snapshot (whose
// bundle costs far more than the table), and when the chain would hold more
// than k_max_table_depth deltas, or deltas of more than
// k_max_delta_bytes_ratio times its full table's stored bytes
// (choose_table_form()).
//
// The bound on a read: a snapshot's sets cost at most k_max_table_depth + 1
// GETs (one per table of its chain, each naming the next; 33, about a
// default chain of bundles' worth, full_every 30), k_max_delta_bytes_ratio + 1
// times its full table's stored bytes as written, and at most
// k_max_chain_bytes uncompressed whatever storage holds. Each table is read
// once per process (the cache below), so list, verify, prune and gc read
// each table of a repository once however many manifests name it.
//
// A table is written before the manifest that names it, and only when it is
// not the parent's; its base is the parent's table, committed already. gc
// removes a table that no manifest's chain holds once it is idle for
// gc.min_age_s; prune removes the tables of the manifests it deleted that no
// remaining manifest's chain holds (the rules of bundles, leftovers.hpp and
// prune.cpp).
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// Largest uncompressed table read back (about 1.5 million refs): a table
// whose reference claims more is refused before it is downloaded.
inline constexpr std::uint64_t k_max_table_bytes = std::uint64_t{256} << 20;

// Most deltas above a full table: a chain is read in at most this many + 1
// GETs. Readers of manifest version 3 (whose writers kept 16) read 32 too.
inline constexpr int k_max_table_depth = 32;

// The deltas of a chain take at most this many times its full table's
// stored (gzip) bytes: a writer writes a full table rather than exceed it.
inline constexpr std::uint64_t k_max_delta_bytes_ratio = 2;

// Largest sum of the uncompressed sizes of the tables of one chain: readers
// refuse more, and a writer writes a full table rather than a delta past it.
inline constexpr std::uint64_t k_max_chain_bytes = (k_max_delta_bytes_ratio + 1) * k_max_table_bytes;

// A table ready to store: its reference and its gzip bytes.
struct EncodedTable {
    TableRef ref;
    std::string gzip;
};

// The full table of `manifest` (of repository `manifest.repository`): the
// canonical JSON of its sets, hashed and compressed.
Result<EncodedTable> encode_table(const Manifest& manifest);

// The delta table turning the sets of `base` (read from the chain
// `base.table_chain`, its first entry the base table) into those of `manifest`.
Result<EncodedTable> encode_delta(const Manifest& base, const Manifest& manifest);

// What a new table is stored as.
enum class TableForm {
    reuse, // the base table itself: the sets are equal
    delta, // a delta against the base table
    full,  // a full table
};

// The form of the new table of a snapshot of `kind` whose base (the
// parent's table) was read through `base_chain` (the base first, its full
// table last; empty when the parent has no table): `reuse` when `same_sets`;
// `full` for a full snapshot; a `delta` (`delta`: its reference, sizes
// stored and uncompressed) while the chain stays within k_max_table_depth
// deltas, its deltas, this one included, take at most k_max_delta_bytes_ratio
// times its full table's stored bytes, and its tables at most
// k_max_chain_bytes uncompressed; else `full`.
TableForm choose_table_form(const std::vector<TableRef>& base_chain, bool same_sets, const TableRef& delta,
                            SnapshotKind kind);

// Store the table of `manifest` whose parent's table is `base` (nullopt: none,
// or a version-1 parent) in the form choose_table_form() picks, the base's
// sets read back from storage (the in-process cache holds them after the
// parent's read) so that a delta is made against exactly what readers apply it
// to; a base that cannot be read back gets a full table. A table written is
// written even when present (same key, same content), so its age restarts and
// gc leaves it to the manifest about to name it. Sets `manifest.table` and
// `manifest.table_chain`.
Status publish_table(storage::Storage& storage, Manifest& manifest, const std::optional<TableRef>& base);

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

// Fill the sets of version-2 or -3 `manifest` from its table: get_table() of
// the named table and of each delta's base down to a full table (depths
// falling by one, at most k_max_table_depth deltas and k_max_chain_bytes in
// all), then each applied from the full table up, each table holding the
// number of refs its reference says. A missing or hostile table of the chain
// is an IntegrityError naming its key. Sets `manifest.table_chain`; a
// version-1 manifest is left as it is.
Status load_table(storage::Storage& storage, Manifest& manifest, Fresh fresh = Fresh::no);

// gzip `data` (zlib, best compression).
Result<std::string> gzip_compress(std::string_view data);

// The bytes gzip stream `data` holds, refusing more than `max_bytes`
// (IntegrityError) and anything that is not one complete gzip stream.
Result<std::string> gzip_decompress(std::string_view data, std::uint64_t max_bytes);

} // namespace snapshotter::snapshot
