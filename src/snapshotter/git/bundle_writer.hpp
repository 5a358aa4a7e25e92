// Git bundles written as a stream: the text header (gitformat-bundle v2 for
// SHA-1, v3 with @object-format=sha256), then a pack passed through while its
// header is parsed and its trailing checksum verified; and the header parser
// that verify and restore use.
#pragma once

#include "snapshotter/util/error.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/process.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace snapshotter::git {

// What a bundle header says.
struct BundleHeader {
    std::string object_format = "sha1";                    // "sha1" or "sha256"
    std::vector<std::string> prerequisites;                // commits the receiver must have
    std::vector<std::pair<std::string, std::string>> refs; // (oid, refname) in header order
    std::vector<std::string> capabilities;                 // other v3 "@key=value" lines, as written
    bool operator==(const BundleHeader&) const = default;
};

// Length in hex digits of an object id of `object_format`, or 0 if unknown.
std::size_t oid_hex_length(std::string_view object_format);

// True when `oid` is lowercase hex of the length `object_format` uses.
bool is_valid_oid(std::string_view oid, std::string_view object_format);

// The header text for `header` (ending in the blank line); fails with
// Internal on an unknown format, a malformed oid or a refname holding
// whitespace or control characters.
Result<std::string> format_bundle_header(const BundleHeader& header);

// A parsed header and the number of bytes it took (the pack starts there).
struct ParsedBundleHeader {
    BundleHeader header;
    std::size_t size = 0;
};

// Parse the bundle header at the start of `bytes`; fails with Integrity when
// the signature, a line or an oid is malformed or when `bytes` ends before
// the blank line.
Result<ParsedBundleHeader> parse_bundle_header(std::string_view bytes);

// What a finished bundle holds.
struct BundleSummary {
    std::uint64_t bundle_size = 0;  // bytes written, header included
    std::string sha256;             // hex SHA-256 of those bytes
    std::uint32_t pack_version = 0; // 2 or 3
    std::uint64_t object_count = 0; // from the pack header
    std::uint64_t pack_size = 0;    // bytes of pack, trailer included
    std::string pack_checksum;      // hex trailer of the pack
};

// Streams a bundle into `sink`: write_header() once, write_pack() for each
// chunk of pack bytes as they arrive, finish() to verify the pack. Memory is
// constant whatever the pack size.
class BundleWriter {
  public:
    // Write bundles into `sink`; the sink's errors abort the write.
    explicit BundleWriter(OutputSink sink);
    ~BundleWriter();
    BundleWriter(BundleWriter&&) noexcept;
    BundleWriter& operator=(BundleWriter&&) noexcept;

    // Write the header text; must come first and only once.
    Status write_header(const BundleHeader& header);
    // Pass `data` (the next pack bytes) through; fails with Integrity on a
    // pack header that is not "PACK" version 2 or 3.
    Status write_pack(std::span<const std::byte> data);
    Status write_pack(std::string_view data);
    // Check that a whole pack arrived and that its trailer equals the SHA-1 or
    // SHA-256 (by the header's object format) of the bytes before it; fails
    // with Integrity otherwise.
    Result<BundleSummary> finish();

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace snapshotter::git
