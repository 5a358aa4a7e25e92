// The Git LFS batch API (git-lfs docs/api/batch.md) and the basic transfer
// (docs/api/basic-transfers.md): one POST {server}/objects/batch names the
// objects, the answer says where each is (an action: href, header, expiry)
// or why it is not (a per-object error), then one GET (download) or PUT
// (upload, then an optional verify POST) per object. Every byte of an answer
// is hostile: counts, sizes, headers and URLs are bounded and checked.
#pragma once

#include "snapshotter/lfs/pointer.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/http.hpp"
#include "snapshotter/util/object_writer.hpp"
#include "snapshotter/util/time.hpp"
#include "snapshotter/util/url.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::lfs {

// Objects named in one batch request (git-lfs sends 100 too).
inline constexpr std::size_t k_batch_size = 100;
// The largest batch answer read (100 objects with long signed URLs fit easily).
inline constexpr std::size_t k_max_batch_response_bytes = std::size_t{4} << 20;
// Headers one action may ask for, and the size of each name and value.
inline constexpr std::size_t k_max_action_headers = 32;
inline constexpr std::size_t k_max_header_bytes = 8192;
// The longest href accepted.
inline constexpr std::size_t k_max_href_bytes = 8192;
// Redirects followed for one request.
inline constexpr int k_max_redirects = 5;
// Attempts for one request whose failure is transient (network, 5xx, 429).
inline constexpr int k_max_attempts = 4;

enum class Operation { download, upload };

// "download" | "upload".
std::string_view to_string(Operation operation);

// Where the batch API is and how to talk to it.
struct Endpoint {
    std::string url;      // the LFS server, without /objects/batch
    std::string username; // basic auth, sent only to `url`'s origin; empty with an empty password: none
    std::string password; // registered as a secret by whoever read it
    RedirectPolicy redirects = RedirectPolicy::same_origin; // options.http.follow_redirects
    bool allow_http = false;                                // http:// hrefs and redirects allowed
};

// What to do for one object: a request to `href` with `header`, valid until `expires`.
struct Action {
    std::string href;
    std::vector<http::Header> header;
    std::optional<Clock::time_point> expires; // nullopt: no expiry given
    bool operator==(const Action&) const = default;
};

// The server's answer for one object.
struct ObjectAnswer {
    Pointer object;
    std::optional<Action> download; // operation download
    std::optional<Action> upload;   // operation upload; absent (with no error): the server has it
    std::optional<Action> verify;   // operation upload, optional
    int error_code = 0;             // a per-object error (404, 410, 422, ...); 0 when none
    std::string error_message;      // its message, printable and bounded
};

// The request body for `objects`: operation, transfers ["basic"], hash_algo sha256.
std::string batch_request_body(Operation operation, std::span<const Pointer> objects);

// Parse a batch answer to a request for `requested` at time `now`: at most one
// answer per requested object, each naming a requested oid with its size, a
// transfer of "basic" (or none), hash_algo sha256 (or none), actions with an
// http(s) href (http only with `allow_http`), bounded header maps without CR
// or LF, expires_in within ±2^31 s (preferred) or expires_at in RFC 3339.
// A requested object the answer leaves out, or anything malformed, is a Git
// error with Cause::protocol (the spec asks an answer for each object).
Result<std::vector<ObjectAnswer>> parse_batch_response(std::string_view body,
                                                       std::span<const Pointer> requested,
                                                       Operation operation, bool allow_http,
                                                       Clock::time_point now);

// The headers a request to `url` carries: the action's `header` only when
// `url` has the href's origin (`action_origin`), and basic auth from
// `endpoint` only when `url` has the endpoint's origin and the action's own
// headers hold no Authorization. Exposed for tests.
std::vector<http::Header> request_headers(const Endpoint& endpoint, std::string_view url,
                                          const std::optional<Origin>& action_origin,
                                          const std::vector<http::Header>& action_header);

// Whether `action` is expired (or expires within `margin`) at `now`.
bool is_expired(const Action& action, Clock::time_point now,
                std::chrono::seconds margin = std::chrono::seconds{30});

// A client of one LFS server; not thread-safe (one http::Client).
class Client {
  public:
    explicit Client(Endpoint endpoint);

    // POST the batch request for `objects` (at most k_batch_size) and parse
    // the answer. A refusal (401, 403, 404) is a Git error with
    // Cause::refused; 5xx and 429 are retried, then fail with their cause.
    Result<std::vector<ObjectAnswer>> batch(Operation operation, std::span<const Pointer> objects);

    // GET `action` for `object` into `writer`, hashing and counting: a size or
    // SHA-256 that differs from `object` is an Integrity error and the writer
    // is aborted (nothing committed); success commits it. Transient failures
    // are retried from the start on a fresh writer from `open_writer`.
    Status download(const Action& action, const Pointer& object,
                    const std::function<Result<std::unique_ptr<ObjectWriter>>()>& open_writer);

    // PUT `content` (the bytes of `object`) as `upload` says, then POST
    // {oid,size} to `verify` when given.
    Status upload(const Action& upload, const std::optional<Action>& verify, const Pointer& object,
                  std::span<const std::byte> content);

    // The server, safe to print.
    [[nodiscard]] std::string describe() const;

  private:
    // One request, redirects followed as the endpoint's policy says.
    Result<http::Response> send(http::Request request, const std::optional<Origin>& action_origin,
                                const std::vector<http::Header>& action_header);
    Endpoint m_endpoint;
    std::optional<Origin> m_origin;
    http::Client m_http;
};

} // namespace snapshotter::lfs
