// Factories of the storage backends, used by the scheme table in storage.cpp.
// Internal to storage/: other layers call storage::open().
#pragma once

#include "snapshotter/storage/storage.hpp"

namespace snapshotter::storage {

// file:///abs/dir, or a plain path: objects are files below the directory.
Result<std::unique_ptr<Storage>> open_file_backend(const Config& config);
// memory://name: process-wide in-memory objects, for tests.
Result<std::unique_ptr<Storage>> open_memory_backend(const Config& config);

} // namespace snapshotter::storage
