#include "snapshotter/storage/s3/checksum.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <zlib.h>

namespace snapshotter::storage {

void Crc32::update(std::span<const std::byte> data) {
    // crc32_z takes a size_t length: a part may be 4 GiB, past zlib's uInt.
    m_value = static_cast<std::uint32_t>(
        crc32_z(m_value, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

std::string crc32_base64(std::uint32_t crc) {
    const unsigned char bytes[4] = {static_cast<unsigned char>(crc >> 24),
                                    static_cast<unsigned char>(crc >> 16),
                                    static_cast<unsigned char>(crc >> 8), static_cast<unsigned char>(crc)};
    unsigned char out[12];
    int n = EVP_EncodeBlock(out, bytes, 4);
    return {reinterpret_cast<const char*>(out), static_cast<std::size_t>(n)};
}

std::string crc32_base64_of(std::span<const std::byte> data) {
    Crc32 crc;
    crc.update(data);
    return crc32_base64(crc.value());
}

std::optional<std::string> crc32_composite(std::span<const std::string> parts) {
    Crc32 crc;
    for (const auto& part : parts) {
        unsigned char bytes[6] = {};
        // Four bytes in base64 are 8 characters, with 2 of padding (EVP_DecodeBlock
        // counts the padding as bytes, hence 6, not 4).
        if (part.size() != 8 || !part.ends_with("==") ||
            EVP_DecodeBlock(bytes, reinterpret_cast<const unsigned char*>(part.data()), 8) != 6)
            return std::nullopt;
        crc.update(std::as_bytes(std::span<const unsigned char>(bytes, 4)));
    }
    return fmt::format("{}-{}", crc32_base64(crc.value()), parts.size());
}

bool checksum_differs(std::string_view answered, std::string_view ours) {
    auto dash = ours.find('-');
    if (dash != std::string_view::npos) {
        // A composite: compare only an answer with the same number of parts.
        auto their_dash = answered.find('-');
        if (their_dash == std::string_view::npos || answered.substr(their_dash) != ours.substr(dash))
            return false;
    } else if (answered.find('-') != std::string_view::npos) {
        return false;
    }
    return answered != ours;
}

} // namespace snapshotter::storage
