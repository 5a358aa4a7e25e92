// A small HTTP client over one libcurl easy handle: buffered request bodies
// (so a retry re-sends the very same bytes), response bodies captured with a
// bound or streamed to an OutputSink, timeouts, and the usual proxy
// environment variables (http_proxy, https_proxy, no_proxy; libcurl reads
// them). Nothing here logs headers: Authorization never leaves the request.
#pragma once

#include "snapshotter/util/error.hpp"
#include "snapshotter/util/process.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace snapshotter::http {

// The response headers (status line included) a server may send for one
// request, redirects included; past it the request fails. libcurl bounds one
// header line (100 KiB), this bounds them all.
inline constexpr std::size_t k_max_response_header_bytes = std::size_t{256} << 10;

// A header as a name and a value.
using Header = std::pair<std::string, std::string>;

struct Request {
    // GET, HEAD, PUT, POST or DELETE.
    std::string method = "GET";
    // The complete URL, already percent-encoded.
    std::string url;
    // Headers sent as given (Host may be set to override libcurl's).
    std::vector<Header> headers;
    // The request body; the caller keeps these bytes alive for the call, so
    // that a retry sends the same buffer again.
    std::span<const std::byte> body;
    // When set, a 2xx response body is streamed here instead of captured;
    // non-2xx bodies are always captured (they hold the error document).
    OutputSink on_body;
    // A captured body larger than this fails the call (never silently cut).
    std::size_t max_body = std::size_t{16} << 20;
    // Connection set-up limit.
    std::chrono::milliseconds connect_timeout = std::chrono::seconds{10};
    // Abort when fewer than `low_speed_bytes` per second flow for `low_speed_time`.
    long low_speed_bytes = 1024;
    std::chrono::seconds low_speed_time = std::chrono::seconds{60};
    // Whole-transfer limit; zero means none (large streams rely on low-speed).
    std::chrono::milliseconds timeout{0};
    // A CA bundle file to trust instead of the system's (AWS_CA_BUNDLE); empty for the default.
    std::string ca_bundle;
};

struct Response {
    long status = 0;
    // Response headers, names lowercased, in the order received.
    std::vector<Header> headers;
    // The captured body (empty when streamed to `on_body`).
    std::string body;
    // Bytes handed to `on_body` so far.
    std::uint64_t streamed = 0;

    // The first value of header `name` (case-insensitive), or nullopt.
    [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
    // True for 2xx statuses.
    [[nodiscard]] bool ok() const { return status >= 200 && status < 300; }
};

// A failed exchange: `transport` is true when the network failed (connect,
// reset, timeout, TLS), which callers may retry; false when the request
// itself or the body sink failed.
struct HttpError {
    Error error;
    bool transport = false;
    // Bytes already streamed to `on_body` when the failure happened.
    std::uint64_t streamed = 0;
};

template <typename T> using HttpResult = std::expected<T, HttpError>;

// The cause of libcurl failing with `code` (a CURLcode): the network failing
// under us (name lookup, connect, TLS handshake, reset, an early end, a
// timeout) is transient; anything else is unspecified.
Cause cause_of_curl_code(int code);

// One connection cache (a libcurl easy handle); not thread-safe: use one
// Client per thread.
class Client {
  public:
    // A client with an empty connection cache (libcurl is initialised once per process).
    Client();
    // Closes the cached connections.
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Perform `request`; any HTTP status is a Response, only transport and
    // sink failures are errors.
    HttpResult<Response> perform(const Request& request);

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

// `text` as bytes, for Request::body.
inline std::span<const std::byte> as_body(std::string_view text) {
    return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

} // namespace snapshotter::http
