// The S3 object writer: an object streamed into parts, one PutObject when
// it is small, a multipart upload (parts in flight through part_pipeline.hpp)
// when it is not; the protections asked for are confirmed after commit.
//
// Overwrite::no and stores that ignore If-None-Match: every publication that
// must not overwrite (PutObject and CompleteMultipartUpload) is sent with
// `If-None-Match: *`, which S3 answers with 412 when the key exists; that is
// atomic. Some S3-compatible stores ignore the header and would overwrite
// silently, so before publishing we also HEAD the key and report Conflict
// when it exists. On such stores this only narrows the race window to the
// time between the HEAD and the write: two writers racing on one key can
// still both succeed, and the later one wins. Snapshot keys are unique by
// construction, so that race needs two jobs writing the same snapshot id.
#pragma once

#include "snapshotter/storage/s3/client.hpp"
#include "snapshotter/storage/storage.hpp"

#include <memory>
#include <string>

namespace snapshotter::storage {

// A writer of the object `key` (the full key, prefix included) through `client`;
// publishes with `If-None-Match: *` when `overwrite` is no.
std::unique_ptr<ObjectWriter> make_s3_writer(std::shared_ptr<S3Client> client, std::string key,
                                             Overwrite overwrite);

} // namespace snapshotter::storage
