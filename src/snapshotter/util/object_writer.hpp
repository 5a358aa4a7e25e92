// ObjectWriter: a sink for one object's bytes that publishes them all at
// once or not at all. Storage backends implement it; the git layer writes
// bundles into it without knowing where they go. It lives below both so that
// git/ and storage/ stay peers.
#pragma once

#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <span>

namespace snapshotter {

// A stream of bytes being written under one key. Nothing is visible under
// the key until commit() succeeds; destroying an uncommitted writer aborts.
class ObjectWriter {
  public:
    virtual ~ObjectWriter() = default;
    // Append `data` to the object.
    virtual Status write(std::span<const std::byte> data) = 0;
    // Publish the object; fails with Conflict when it must not overwrite.
    virtual Status commit() = 0;
    // Drop everything written so far (idempotent).
    virtual void abort() = 0;
};

} // namespace snapshotter
