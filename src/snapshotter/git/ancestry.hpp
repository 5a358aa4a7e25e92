// Whether old tips are ancestors of new ones, for many refs at once: the
// question a snapshot's ledger asks for every moved ref (fast-forward or
// rewritten). One `git cat-file` session (git/cat_file.hpp) reads the
// commits and the walk runs here, where `git merge-base --is-ancestor` would
// be one process per ref.
#pragma once

#include "snapshotter/git/cat_file.hpp"
#include "snapshotter/git/git.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace snapshotter::git {

// For each (ancestor, descendant) pair of object ids in `pairs` (annotated
// tags peeled): whether both are commits in `repo` and `ancestor` is
// reachable from `descendant`, as `git merge-base --is-ancestor` answers it;
// false when either is missing or not a commit. The commits are read through
// `objects` (a session in `repo`), with git's own walk (paint_down_to_common:
// both histories newest first, until only commits reachable from both are
// left); at most k_ancestry_walk_commits commits are read, and the pairs left
// then are asked of `git`'s GitApi::is_ancestor(). Fails with Git when an id
// is not a full hexadecimal object id or git misbehaves.
Result<std::vector<bool>> ancestry(const GitApi& git, const std::filesystem::path& repo,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   CatFileSession& objects);

// ancestry() through a session of its own, started by `git` with `timeout`.
Result<std::vector<bool>> ancestry(const GitApi& git, const std::filesystem::path& repo,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   std::chrono::milliseconds timeout);

// At most this many commits are read by one ancestry() call.
inline constexpr std::size_t k_ancestry_walk_commits = 200'000;

} // namespace snapshotter::git
