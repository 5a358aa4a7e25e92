// Factories of the storage backends, used by the scheme table in storage.cpp.
// Internal to storage/: other layers call storage::open().
#pragma once

#include "snapshotter/storage/s3/credentials.hpp"
#include "snapshotter/storage/storage.hpp"

#include <span>
#include <string_view>

namespace snapshotter::storage {

// file:///abs/dir, or a plain path: objects are files below the directory.
Result<std::unique_ptr<Storage>> open_file_backend(const Config& config);
// memory://name: process-wide in-memory objects, for tests.
Result<std::unique_ptr<Storage>> open_memory_backend(const Config& config);
// s3://bucket/prefix: S3 or an S3-compatible store, with `config.s3`.
Result<std::unique_ptr<Storage>> open_s3_backend(const Config& config);
// The same with an injected AWS environment (credentials, variables), for tests.
Result<std::unique_ptr<Storage>> open_s3_backend_with(const Config& config, AwsEnvironment env);

// What a kind of S3 request does to the bucket, for least-privilege roles.
enum class S3Access { read, write, remove };

// One kind of request the S3 backend sends.
struct S3Operation {
    std::string_view api;         // the S3 API name, e.g. "CreateMultipartUpload"
    std::string_view method;      // its HTTP method
    std::string_view subresource; // the query parameter that selects it, or empty for a plain object request
    std::string_view iam_action;  // the IAM action that authorizes it, e.g. "s3:PutObject"
    S3Access access;
};

// Every kind of request the S3 backend sends. The backend refuses to send a
// request that matches no row, so IAM policies (docs/SECURITY.md) are checked
// against this table by tests/unit/test_docs_schema.cpp.
std::span<const S3Operation> s3_operations();

// The row of s3_operations() that a request with `method` and query parameter
// names `query_names` is, or nullptr: a row with a subresource matches when the
// query has it, a plain object row only when there is no query.
const S3Operation* s3_operation_of(std::string_view method, std::span<const std::string_view> query_names);

} // namespace snapshotter::storage
