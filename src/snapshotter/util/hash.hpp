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

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Lowercase hex of `data`.
std::string to_hex(std::span<const unsigned char> data);

} // namespace snapshotter
