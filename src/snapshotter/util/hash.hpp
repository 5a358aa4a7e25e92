// SHA-256 over streams, hex encoding.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace snapshotter {

// Incremental SHA-256 (OpenSSL EVP underneath).
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    // Feed `data` into the digest.
    void update(std::span<const std::byte> data);
    void update(std::string_view data);
    // The lowercase hex digest; the object must not be updated afterwards.
    std::string hex_digest();

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Incremental SHA-1 or SHA-256, chosen at run time (a git object format's
// digest: object ids, pack trailers).
class Digest {
  public:
    // A digest by git object format: "sha1" or "sha256"; anything else throws std::invalid_argument.
    explicit Digest(std::string_view object_format);
    ~Digest();
    Digest(Digest&&) noexcept;
    Digest& operator=(Digest&&) noexcept;

    // Feed `data` into the digest.
    void update(std::string_view data);
    // The raw digest (20 or 32 bytes); the object must not be updated afterwards.
    std::string raw_digest();
    // The lowercase hex digest; the object must not be updated afterwards.
    std::string hex_digest();

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Lowercase hex of `data`.
std::string to_hex(std::span<const unsigned char> data);

// `data` in standard base64 with padding (RFC 4648), as HTTP basic auth carries it.
std::string base64_encode(std::string_view data);

} // namespace snapshotter
