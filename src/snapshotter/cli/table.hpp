// Human-readable renderings for `--output table` (and `auto` on a terminal):
// every action's result as aligned tables and a few summary lines.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace snapshotter::cli {

// How a cell lines up in its column.
enum class Align { left, right };

// Lay `rows` out as text columns separated by two spaces, each as wide as its
// widest cell in terminal columns (UTF-8 aware), with `header` first. Every
// cell passes through printable(); trailing spaces are trimmed; each line ends
// in '\n'. `align` gives each column's alignment (missing ones are left).
std::string render_columns(const std::vector<std::string>& header,
                           const std::vector<std::vector<std::string>>& rows,
                           const std::vector<Align>& align);

// `bytes` in binary units: "0 B", "860 B", "1.5 KiB", "12.0 MiB", "3.2 GiB".
std::string human_bytes(std::uint64_t bytes);

// The result of the list action (docs/job-payload.md, "list") for people: per
// repository its name and snapshot count, then a table of its snapshots,
// newest first: creation time (UTC), snapshot id, kind, refs, refs changed
// ("+created ~updated !rewritten -deleted", from the ref-change ledger), the
// bytes the snapshot added and the length of its bundle chain. Unreadable
// manifests are listed under the table with their error. Ends with a legend.
std::string render_list_table(const nlohmann::json& result);

// The snapshot action's result: one row per repository (status, kind, refs,
// refs moved, bytes, time, snapshot id or the failure), failures first, then
// a summary line; repositories a rerun of the same job_id skipped are named.
std::string render_snapshot_table(const nlohmann::json& result);

// The restore action's result: what was restored where, per repository.
std::string render_restore_table(const nlohmann::json& result);

// The verify action's result: one row per snapshot checked, problems under it.
std::string render_verify_table(const nlohmann::json& result);

// The prune action's result: per repository the snapshots kept (with why) and
// dropped, the bytes freed; "would" wording for a dry run.
std::string render_prune_table(const nlohmann::json& result);

// The gc action's result: the leftovers removed (or that would be), with bytes.
std::string render_gc_table(const nlohmann::json& result);

// Any action's result for people, chosen by its "action" field; a result
// this does not know is shown as indented JSON.
std::string render_result(const nlohmann::json& result);

} // namespace snapshotter::cli
