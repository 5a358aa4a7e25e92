// The streaming engine: the remote's refs are listed over protocol v2 in a
// session kept open for the fetch, and the server's pack goes straight into
// the bundle in storage; an incremental sends the parent's tips as haves.
// No local clone. With options.verify `index` the pack also goes through
// git index-pack, and the bundle is committed only when git accepted it.
#pragma once

#include "snapshotter/snapshot/engine.hpp"

#include <memory>

namespace snapshotter::snapshot {

// The streaming engine for `ec` (which must outlive it).
std::unique_ptr<Engine> make_stream_engine(const EngineContext& ec);

} // namespace snapshotter::snapshot
