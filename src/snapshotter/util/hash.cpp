#include "snapshotter/util/hash.hpp"

#include <openssl/evp.h>
#include <stdexcept>

namespace snapshotter {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : m_impl(std::make_unique<Impl>()) {
    m_impl->ctx = EVP_MD_CTX_new();
    if (m_impl->ctx == nullptr || EVP_DigestInit_ex(m_impl->ctx, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("cannot initialise SHA-256");
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::byte> data) {
    EVP_DigestUpdate(m_impl->ctx, data.data(), data.size());
}
void Sha256::update(std::string_view data) {
    EVP_DigestUpdate(m_impl->ctx, data.data(), data.size());
}

std::string Sha256::hex_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(m_impl->ctx, digest, &length);
    return to_hex({digest, length});
}

struct Digest::Impl {
    EVP_MD_CTX* ctx = nullptr;
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

Digest::Digest(std::string_view object_format) : m_impl(std::make_unique<Impl>()) {
    const EVP_MD* md = object_format == "sha1"     ? EVP_sha1()
                       : object_format == "sha256" ? EVP_sha256()
                                                   : nullptr;
    if (md == nullptr)
        throw std::invalid_argument("unknown object format for a digest");
    m_impl->ctx = EVP_MD_CTX_new();
    if (m_impl->ctx == nullptr || EVP_DigestInit_ex(m_impl->ctx, md, nullptr) != 1)
        throw std::runtime_error("cannot initialise a digest");
}
Digest::~Digest() = default;
Digest::Digest(Digest&&) noexcept = default;
Digest& Digest::operator=(Digest&&) noexcept = default;

void Digest::update(std::string_view data) {
    EVP_DigestUpdate(m_impl->ctx, data.data(), data.size());
}

std::string Digest::raw_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(m_impl->ctx, digest, &length);
    return {reinterpret_cast<const char*>(digest), length};
}

std::string Digest::hex_digest() {
    auto raw = raw_digest();
    return to_hex({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.hex_digest();
}

std::string to_hex(std::span<const unsigned char> data) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (unsigned char c : data) {
        out.push_back(k_digits[c >> 4]);
        out.push_back(k_digits[c & 0xf]);
    }
    return out;
}

std::string base64_encode(std::string_view data) {
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

} // namespace snapshotter
