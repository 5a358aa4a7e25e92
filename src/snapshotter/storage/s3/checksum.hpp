// S3's flexible checksums as the writer sends them: a CRC32 of each part,
// computed while the part is filled, declared with CreateMultipartUpload
// (`x-amz-checksum-algorithm: CRC32`), sent with every UploadPart
// (`x-amz-checksum-crc32`) and listed in CompleteMultipartUpload. S3 checks
// each part against it; moto then skips its own whole-object checksum, and
// servers that predate flexible checksums (Ceph RGW 16.2) ignore it. Internal
// to storage/s3/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace snapshotter::storage {

// The algorithm named in `x-amz-checksum-algorithm`.
inline constexpr std::string_view k_checksum_algorithm = "CRC32";
// The request and response header that carries a part's or an object's CRC32.
inline constexpr std::string_view k_checksum_header = "x-amz-checksum-crc32";

// An incremental CRC32 (zlib's, the polynomial S3 names CRC32).
class Crc32 {
  public:
    // Feed `data` into the checksum.
    void update(std::span<const std::byte> data);
    // The checksum of the bytes fed so far.
    [[nodiscard]] std::uint32_t value() const { return m_value; }
    // Start again from no bytes.
    void reset() { m_value = 0; }

  private:
    std::uint32_t m_value = 0;
};

// `crc` as S3 carries it: the base64 of its four bytes, most significant first
// (the CRC32 of "123456789", 0xCBF43926, is "y/Q5Jg==").
std::string crc32_base64(std::uint32_t crc);

// The base64 CRC32 of `data`, as `x-amz-checksum-crc32` carries it.
std::string crc32_base64_of(std::span<const std::byte> data);

// The checksum S3 gives a multipart object of `parts` (each a base64 CRC32,
// in part order): the CRC32 of their four bytes each, concatenated, in
// base64, then "-N"; nullopt when a part's is not a valid base64 CRC32.
std::optional<std::string> crc32_composite(std::span<const std::string> parts);

// Whether `answered`, the checksum a server gave for bytes whose checksum
// is `ours` (either one part's "<base64>" or a composite "<base64>-N"),
// differs from it. An answer in another form (another checksum type) is not
// a mismatch: only a value of our form that differs is.
bool checksum_differs(std::string_view answered, std::string_view ours);

} // namespace snapshotter::storage
