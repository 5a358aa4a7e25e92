// The git-CLI engine: `git ls-remote` lists the remote's refs; `git fetch`
// updates a cached mirror (options.cache_dir/mirrors, one writer at a time),
// and `git bundle create` (full, or incremental against the parent's tips)
// streams the bundle into storage. Old tips stay in the mirror as
// refs/snapshotter/preserved/ refs, so later full bundles carry them.
#pragma once

#include "snapshotter/snapshot/engine.hpp"

#include <memory>

namespace snapshotter::snapshot {

// The git-CLI engine for `ec` (which must outlive it).
std::unique_ptr<Engine> make_cli_engine(const EngineContext& ec);

} // namespace snapshotter::snapshot
