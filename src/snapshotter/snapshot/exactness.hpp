// The proof a snapshot gives before it is committed: the refs it records
// (and the refs its bundle lists) are exactly the refs it listed and
// selected, minus those refused with a reason the result reports. Pure
// functions; the engines and create.cpp call them before any bundle or manifest is committed.
#pragma once

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/git.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// How `recorded` differs from `listed`, one line per ref ("missing NAME",
// "unexpected NAME", "NAME: listed OID, recorded OID"), at most `max` lines
// plus a count of the rest; empty when they are equal.
std::vector<std::string> ref_differences(const git::RefMap& listed, const git::RefMap& recorded,
                                         std::size_t max = 5);

// Ok when `recorded` equals `listed`; otherwise a GitError naming `repository`
// and the differences, saying that nothing was committed.
Status check_recorded_refs(std::string_view repository, const git::RefMap& listed,
                           const git::RefMap& recorded);

// How `recorded` differs from `listed` ("HEAD: listed detached at 1234abcd,
// recorded symbolic to refs/heads/main"); empty when they are equal.
std::string head_difference(const git::HeadState& listed, const git::HeadState& recorded);

// Ok when the HEAD a snapshot records (state and target or oid) equals the
// HEAD it listed; otherwise a GitError naming `repository`, saying that
// nothing was committed.
Status check_recorded_head(std::string_view repository, const git::HeadState& listed,
                           const git::HeadState& recorded);

// Whether a bundle must list every recorded ref or only the changed ones.
enum class HeaderScope { every_ref, changed_refs };

// Ok when every ref `header` lists (outside refs/snapshotter/) is in `refs`
// with the same oid and, with HeaderScope::every_ref, every ref of `refs` is
// listed; otherwise a GitError naming `repository`.
Status check_bundle_header(std::string_view repository, const git::BundleHeader& header,
                           const git::RefMap& refs, HeaderScope scope);

// The result's "refs_refused" entries: [{"name": excerpt, "reason": ...}], sorted by name.
nlohmann::json refused_json(const std::map<std::string, std::string>& refused);

} // namespace snapshotter::snapshot
