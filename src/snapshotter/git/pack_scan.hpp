// A streaming pack scanner: fed a pack's bytes as they pass (as PackIndexer
// is), it never holds the pack. It parses the pack header and every entry
// header, inflates each entry with zlib, and reports commits (oid and parent
// oids) and small blobs (oid and content) through callbacks, computing object
// ids (SHA-1 or SHA-256 by the object format) only for what it reports.
//
// Deltas (OFS_DELTA, and REF_DELTA on an oid it reported) whose base is a
// reported-kind object are applied to that base, taken from a bounded cache
// of recent commits and small blobs. A REF_DELTA on any other base is
// reported as unresolved, with its base oid and result size, so the caller
// can decide: a thin pack's base outside the pack, or an in-pack tree or
// large blob (git sends in-pack bases as REF_DELTA at times, even with
// ofs-delta; their results are trees and large blobs, never commits). An
// OFS_DELTA on an object not reported is skipped silently (same type as its base).
//
// Trees of at most `max_tree_size` bytes (0: none, the default) are reported
// too, hashed and cached like small blobs, so that deltas on them resolve.
//
// Inflating: an entry whose declared size is at most
// `PackScanOptions::max_whole_inflate` (1 MiB by default) is inflated in one
// call by libdeflate, into a buffer of exactly that size, once its whole zlib
// stream is among the bytes at hand; the call also says where the entry ends.
// Until then its bytes are held (not consumed) across feed() calls, and tried
// again once they have doubled. When libdeflate fails with zlib's bound on
// the entry's stream (compressBound of its size) at hand, or at finish(), the
// entry is inflated by zlib's streaming inflate from its start instead, as
// every larger entry is: zlib decides every error (sizes that disagree,
// corrupt data), so messages and results are zlib's. libdeflate checks the
// zlib header and the Adler-32 of its output as zlib does, so damaged content
// fails either way. Known difference: libdeflate 1.14 accepts a few malformed
// streams zlib rejects (more than 286 length or 30 distance codes declared,
// the unused symbols 286-287 and 30-31, an over-long code-length repeat, a
// precode of one symbol); no deflater writes them, a pack holding one still
// fails at restore (git inflates with zlib) or with `verify: index`, and its
// content as reported is the stream's plain meaning. A scanner's results on
// valid packs are the same with and without the whole-entry path (tested).
//
// Memory: at most `PackScanOptions::cache_bytes` of cached object content
// (16 MiB by default), one object being inflated (a commit or delta up to
// `max_object_size`, larger ones only hashed or skipped), a 64 KiB inflate
// buffer, an output buffer as large as the largest entry inflated whole (at
// most `max_whole_inflate`), the bytes held for an entry not yet whole (at
// most zlib's bound on its stream, about `max_whole_inflate`, plus the last
// feed), and 37-45 bytes (SHA-1; 12 more for SHA-256) per reported object
// for the offset and id table (git/object_table.hpp), at most `max_known`
// of them. The cache counts 96 bytes per cached object beside its content,
// so that many small objects stay within the bound. Hostile input (a bad
// header, sizes that disagree, a truncated or overlong pack, corrupt zlib, a
// bad delta) fails with Integrity; it never crashes. The trailer's checksum
// is not checked here: BundleWriter does.
#pragma once

#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

// A commit the pack holds: its oid and its parents', in header order.
struct ScannedCommit {
    std::string oid;
    std::vector<std::string> parents;
    std::string tree; // its root tree's oid
};

// A tree the pack holds whose size is at most PackScanOptions::max_tree_size:
// its oid and raw content (entries "<mode> <name>\0<raw oid>").
struct ScannedTree {
    std::string oid;
    std::string content;
};

// A blob the pack holds whose size is at most PackScanOptions::max_blob_size.
struct ScannedBlob {
    std::string oid;
    std::string content;
};

// A delta the scanner could not apply: its base is not in the pack (a thin
// pack's base, which the receiver has) or no longer in the cache.
struct UnresolvedDelta {
    std::string base_oid;          // hex: a thin pack's base, or an in-pack base that left the cache;
                                   // empty: an in-pack base not remembered (max_known)
    std::uint64_t result_size = 0; // the size of the object the delta makes
};

// Limits and what to report.
struct PackScanOptions {
    std::string object_format = "sha1";       // "sha1" or "sha256"
    bool report_commits = true;               // call on_commit for every commit
    std::uint64_t max_blob_size = 0;          // report blobs of at most this size; 0: no blobs
    std::size_t cache_bytes = 16U << 20;      // content kept to resolve deltas (LRU by insertion)
    std::uint64_t max_object_size = 8U << 20; // larger commits and deltas are skipped (counted)
    std::uint64_t max_objects = 0;            // a header saying more fails; 0: 2^32 - 1
    std::uint64_t max_tree_size = 0;          // report trees of at most this size; 0: no trees
    // Reported objects remembered as delta bases (about 45 bytes each). Past
    // it, reported objects are not remembered, and every delta whose base is
    // not remembered is reported unresolved (base oid empty when only its
    // offset is known): memory stays bounded whatever the pack's object count.
    std::uint64_t max_known = 4'000'000;
    // Entries of at most this declared size are inflated whole by libdeflate
    // (see above); 0: every entry is streamed through zlib.
    std::uint64_t max_whole_inflate = 1U << 20;
};

// What a caller still follows (PackScanCallbacks::following).
struct PackFollow {
    bool commits = true;
    bool trees = true;
};

// Where the scanner reports; an empty function is not called. A failing
// callback stops the scan with its error.
struct PackScanCallbacks {
    std::function<Status(const ScannedCommit&)> on_commit;
    std::function<Status(const ScannedBlob&)> on_blob;
    std::function<Status(const UnresolvedDelta&)> on_unresolved;
    std::function<Status(const ScannedTree&)> on_tree;
    // Asked before each entry while commits or trees are reported. What it
    // no longer follows is, for the rest of the pack, neither hashed nor
    // reported, and its cached content is dropped (a caller that found the
    // commit it follows spares every other commit, then every other tree).
    std::function<PackFollow()> following;
};

// What a finished scan saw.
struct PackScanSummary {
    std::uint32_t version = 0;      // 2 or 3
    std::uint64_t object_count = 0; // from the pack header
    std::uint64_t commits = 0;      // reported
    std::uint64_t blobs = 0;        // reported
    std::uint64_t deltas = 0;       // OFS_DELTA and REF_DELTA entries
    std::uint64_t unresolved = 0;   // deltas reported as unresolved
    std::uint64_t skipped = 0;      // commits or deltas over max_object_size, not reported
    std::uint64_t pack_size = 0;    // bytes fed, trailer included
    std::uint64_t trees = 0;        // reported
    std::uint64_t forgotten = 0;    // reported but not remembered (past max_known)
    std::uint64_t whole = 0;        // entries inflated whole by libdeflate; the rest went through zlib
};

// Scans one pack. feed() the bytes in order, then finish().
class PackScanner {
  public:
    // Fails (std::invalid_argument) on an unknown object format.
    PackScanner(PackScanOptions options, PackScanCallbacks callbacks);
    ~PackScanner();
    PackScanner(PackScanner&&) noexcept;
    PackScanner& operator=(PackScanner&&) noexcept;

    // Scan the next `data`; fails with Integrity on malformed pack bytes, or
    // with a callback's error. After a failure every call fails.
    Status feed(std::span<const std::byte> data);
    Status feed(std::string_view data);
    // Scan what is still held (the last entries may be reported here), then
    // check that every object and exactly a trailer arrived; fails with
    // Integrity otherwise.
    Result<PackScanSummary> finish();

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// The parents of the commit whose body is `content` (its header lines up to
// the first blank line); fails with Integrity when the header does not start
// with a well-formed "tree" line or a "parent" line is malformed.
Result<std::vector<std::string>> commit_parents(std::string_view content, std::string_view object_format);

// Apply the git delta `delta` to `base`; fails with Integrity on a malformed
// delta, a base of the wrong size or a result larger than `max_result`.
Result<std::string> apply_delta(std::string_view base, std::string_view delta, std::uint64_t max_result);

} // namespace snapshotter::git
