// The retention policy of prune, as pure functions: snapshot ids in, the kept
// set (with the reasons each snapshot is kept) out. No I/O, so it can be
// tested over thousands of generated snapshots.
//
// The rules are restic's `forget` rules, combined with OR, all in UTC:
//   keep_last N      the N newest snapshots
//   keep_hourly N    walking from the newest, the first (newest) snapshot of
//   keep_daily N     each hour / day / ISO week / month / year not yet seen,
//   keep_weekly N    until N such buckets are kept; buckets without a
//   keep_monthly N   snapshot do not count
//   keep_yearly N
//   keep_within S    every snapshot newer than (newest snapshot - S); like
//                    restic this counts back from the newest snapshot, not
//                    from now, so a stalled schedule never deletes more
//   pinned           the listed ids
// and the newest snapshot is always kept: the next incremental builds on it.
#pragma once

#include "snapshotter/job/job.hpp"

#include <map>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// Kept snapshot id -> why ("newest", "last", "hourly", "daily", "weekly",
// "monthly", "yearly", "within", "pinned"), in that order.
using KeptSet = std::map<std::string, std::vector<std::string>>;

// The snapshots of one repository (`ids`, any order; entries that are not
// snapshot ids are ignored) that `policy` keeps.
KeptSet apply_retention(const std::vector<std::string>& ids, const job::Retention& policy);

} // namespace snapshotter::snapshot
