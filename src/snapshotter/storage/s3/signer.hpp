// AWS Signature Version 4 for S3, written out step by step so that every
// canonical form can be unit-tested against AWS's published examples and
// botocore. libcurl's CURLOPT_AWS_SIGV4 is not used: it signs paths and
// queries as written (see ../shared/FIELD-NOTES.md).
#pragma once

#include "snapshotter/util/http.hpp"
#include "snapshotter/util/time.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace snapshotter::storage::sigv4 {

// An access key, its secret and, for temporary credentials, the session
// token and expiry.
struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
    std::optional<Clock::time_point> expiration;
};

// The payload hash S3 accepts when the body is not hashed.
inline constexpr std::string_view k_unsigned_payload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string.
inline constexpr std::string_view k_empty_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// `text` with every byte outside A-Za-z0-9-._~ percent-encoded in uppercase
// hex; '/' is kept too when `keep_slash` is true.
std::string uri_encode(std::string_view text, bool keep_slash);

// `text` with every valid %XY sequence decoded ('+' stays '+').
std::string percent_decode(std::string_view text);

// The canonical URI of the unencoded `path` ("/bucket/my key"): each segment
// encoded, '/' kept, no `.`/`..` normalisation (S3 keys may hold them).
std::string canonical_uri(std::string_view path);

// The canonical query of the wire `query` ("uploads", "b=2&a=1"): names and
// values decoded, re-encoded with only A-Za-z0-9-._~ unescaped ('/' as %2F),
// a missing '=' read as an empty value, sorted by name then value.
std::string canonical_query(std::string_view query);

// `params` encoded and sorted into the canonical query form, which is also a
// valid wire query.
std::string encode_query(const std::vector<std::pair<std::string, std::string>>& params);

// The canonical header block (lowercased names, trimmed values with inner
// space runs collapsed, sorted by name, one "name:value\n" per header,
// repeated names joined by ',') and the signed header list ("a;b;c").
std::pair<std::string, std::string> canonical_headers(const std::vector<http::Header>& headers);

// What to sign: the method, the Host header value, the unencoded path, the
// wire query, extra headers to sign and send, and the payload hash (hex
// SHA-256 or UNSIGNED-PAYLOAD).
struct SignInput {
    std::string method;
    std::string host;
    std::string path;
    std::string query;
    std::vector<http::Header> headers;
    std::string payload_hash;
};

// The intermediate forms and the result of signing.
struct Signed {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;
    std::string authorization;
    // Every header to send: the input headers plus host, x-amz-date,
    // x-amz-content-sha256, x-amz-security-token (with a session token) and
    // Authorization.
    std::vector<http::Header> headers;
};

// Sign `input` with `credentials` for `region` and `service` at time `now`.
Signed sign(const SignInput& input, const Credentials& credentials, std::string_view region,
            std::string_view service, Clock::time_point now);

// `now` as the SigV4 timestamp, e.g. "20130524T000000Z".
std::string amz_date(Clock::time_point now);

// The raw signing key: HMAC-SHA256 chained over `date` (YYYYMMDD), `region`,
// `service` and "aws4_request", starting from "AWS4" + `secret`.
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);

} // namespace snapshotter::storage::sigv4
