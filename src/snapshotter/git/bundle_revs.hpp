// The revisions of an incremental bundle: what `git bundle create` is given
// so that it writes the bundle it writes given every old tip as a negative,
// without the cost of those negatives. git 2.39's create_bundle() removes
// duplicates from its list of revisions in quadratic time
// (object_array_remove_duplicates): 3.4 s for the 100,271 old tips of a
// 100,000-ref mirror, 13-24 s for 100,269 revisions, against 0.16 s for
// one `rev-list --boundary` of the same.
#pragma once

#include "snapshotter/git/cat_file.hpp"
#include "snapshotter/git/git.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace snapshotter::git {

// A ref an incremental bundle lists when its object is new: its name, its
// object and, for an annotated tag, the object it peels to (empty for
// anything else, and for a tag whose peeled object is not known).
struct BundleTip {
    std::string name;
    std::string oid;
    std::string peeled;
};

// What an incremental bundle takes.
struct IncrementalRevs {
    std::vector<std::string> revs; // for GitApi::bundle_create: ref names, then "^<oid>" negatives
    bool new_objects = false;      // whether the tips reach an object the old commits do not
};

// The revisions of an incremental bundle of `tips` over the old commits
// `excluded` (present in `repo`; the parent snapshot's tips peeled to
// commits), worked out by one GitApi::bundle_boundary walk and the types
// of the tips `objects` (a session on `repo`) tells:
//  - the negatives are the walk's boundary, plus the commit a tag tip peels
//    to where that commit is old;
//  - a tip that is itself an old commit (the walk does not show it) is left
//    out: git lists no ref for a tip its negatives reach, and it adds no
//    object.
// git then shows the same commits (a commit the tips reach and `excluded`
// reach is reached from the boundary or is such a tip's commit), so it
// writes the same prerequisites (the boundary), the same refs and the same
// pack (pack-objects leaves out what the boundary's trees hold, and a
// thin pack deltas against them alone). An annotated tag tip whose peeled
// object is not given, where the walk shows no commit of it, takes git's
// own input instead: every tip, and every one of `excluded` as a negative.
// `new_objects` is false when every tip is an old commit (a bundle would
// hold no object), true otherwise. Fails with Git when the walk or the
// session fails.
Result<IncrementalRevs> incremental_bundle_revs(const GitApi& git, CatFileSession& objects,
                                                const std::filesystem::path& repo,
                                                const std::vector<BundleTip>& tips,
                                                const std::vector<std::string>& excluded,
                                                std::chrono::milliseconds timeout);

} // namespace snapshotter::git
