// Factories of the storage backends, used by the scheme table in storage.cpp.
// Internal to storage/: other layers call storage::open().
#pragma once

#include "snapshotter/storage/s3_credentials.hpp"
#include "snapshotter/storage/storage.hpp"

namespace snapshotter::storage {

// file:///abs/dir, or a plain path: objects are files below the directory.
Result<std::unique_ptr<Storage>> open_file_backend(const Config& config);
// memory://name: process-wide in-memory objects, for tests.
Result<std::unique_ptr<Storage>> open_memory_backend(const Config& config);
// s3://bucket/prefix: S3 or an S3-compatible store (options: region, endpoint,
// addressing, sse, kms_key_id, bucket_key, storage_class).
Result<std::unique_ptr<Storage>> open_s3_backend(const Config& config);
// The same with an injected AWS environment (credentials, variables), for tests.
Result<std::unique_ptr<Storage>> open_s3_backend_with(const Config& config, AwsEnvironment env);

} // namespace snapshotter::storage
