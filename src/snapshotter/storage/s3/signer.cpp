#include "snapshotter/storage/s3/signer.hpp"

#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <ctime>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace snapshotter::storage::sigv4 {
namespace {

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
    return std::string(reinterpret_cast<const char*>(out), length);
}

// Trim and collapse runs of spaces into one, as SigV4 requires.
std::string canonical_value(std::string_view value) {
    std::string out;
    bool space = false;
    for (char c : value) {
        if (c == ' ' || c == '\t') {
            space = true;
            continue;
        }
        if (space && !out.empty())
            out.push_back(' ');
        space = false;
        out.push_back(c);
    }
    return out;
}

} // namespace

std::string uri_encode(std::string_view text, bool keep_slash) {
    static constexpr char k_hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 3);
    for (unsigned char c : text) {
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(k_hex[c >> 4]);
            out.push_back(k_hex[c & 0xf]);
        }
    }
    return out;
}

std::string percent_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

std::string canonical_uri(std::string_view path) {
    if (path.empty())
        return "/";
    return uri_encode(path, true);
}

std::string encode_query(const std::vector<std::pair<std::string, std::string>>& params) {
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(params.size());
    for (const auto& [name, value] : params)
        encoded.emplace_back(uri_encode(name, false), uri_encode(value, false));
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto& [name, value] : encoded) {
        if (!out.empty())
            out.push_back('&');
        out += name;
        out.push_back('=');
        out += value;
    }
    return out;
}

std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> params;
    std::size_t start = 0;
    while (start <= query.size() && !query.empty()) {
        auto amp = query.find('&', start);
        std::string_view part = query.substr(start, amp == std::string_view::npos ? query.npos : amp - start);
        if (!part.empty()) {
            auto eq = part.find('=');
            if (eq == std::string_view::npos)
                params.emplace_back(percent_decode(part), "");
            else
                params.emplace_back(percent_decode(part.substr(0, eq)), percent_decode(part.substr(eq + 1)));
        }
        if (amp == std::string_view::npos)
            break;
        start = amp + 1;
    }
    return encode_query(params);
}

std::pair<std::string, std::string> canonical_headers(const std::vector<http::Header>& headers) {
    std::vector<std::pair<std::string, std::string>> sorted;
    for (const auto& [name, value] : headers) {
        std::string n = ascii_lower(canonical_value(name));
        std::string v = canonical_value(value);
        auto it = std::find_if(sorted.begin(), sorted.end(), [&](const auto& h) { return h.first == n; });
        if (it != sorted.end())
            it->second += "," + v;
        else
            sorted.emplace_back(std::move(n), std::move(v));
    }
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::string block;
    std::string names;
    for (const auto& [name, value] : sorted) {
        block += name + ":" + value + "\n";
        if (!names.empty())
            names.push_back(';');
        names += name;
    }
    return {block, names};
}

std::string amz_date(Clock::time_point now) {
    std::time_t t = Clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[20];
    std::strftime(buffer, sizeof buffer, "%Y%m%dT%H%M%SZ", &tm);
    return buffer;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
    std::string k = hmac("AWS4" + std::string(secret), date);
    k = hmac(k, region);
    k = hmac(k, service);
    return hmac(k, "aws4_request");
}

Signed sign(const SignInput& input, const Credentials& credentials, std::string_view region,
            std::string_view service, Clock::time_point now) {
    Signed out;
    std::string timestamp = amz_date(now);
    std::string date = timestamp.substr(0, 8);

    // Every header we send and sign: the caller's plus the ones SigV4 needs.
    out.headers = input.headers;
    out.headers.emplace_back("host", input.host);
    out.headers.emplace_back("x-amz-date", timestamp);
    out.headers.emplace_back("x-amz-content-sha256", input.payload_hash);
    if (!credentials.session_token.empty())
        out.headers.emplace_back("x-amz-security-token", credentials.session_token);
    auto [header_block, signed_headers] = canonical_headers(out.headers);

    out.canonical_request =
        fmt::format("{}\n{}\n{}\n{}\n{}\n{}", input.method, canonical_uri(input.path),
                    canonical_query(input.query), header_block, signed_headers, input.payload_hash);
    std::string scope = fmt::format("{}/{}/{}/aws4_request", date, region, service);
    out.string_to_sign =
        fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", timestamp, scope, sha256_hex(out.canonical_request));
    std::string key = signing_key(credentials.secret_access_key, date, region, service);
    std::string raw = hmac(key, out.string_to_sign);
    out.signature = to_hex({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
    out.authorization = fmt::format("AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders={},Signature={}",
                                    credentials.access_key_id, scope, signed_headers, out.signature);
    out.headers.emplace_back("authorization", out.authorization);
    return out;
}

} // namespace snapshotter::storage::sigv4
