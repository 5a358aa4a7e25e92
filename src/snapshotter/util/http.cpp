#include "snapshotter/util/http.hpp"

#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <cstring>
#include <curl/curl.h>
#include <fmt/format.h>
#include <mutex>

namespace snapshotter::http {
namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Errors libcurl reports for a network that failed under us: worth a retry.
bool is_transport_error(CURLcode code) {
    return is_transient(cause_of_curl_code(code));
}

// State shared with the libcurl callbacks during one perform().
struct Transfer {
    CURL* curl = nullptr;
    const Request* request = nullptr;
    Response response;
    std::size_t read_offset = 0;
    std::optional<Error> sink_error;
    bool too_large = false;
    std::size_t header_bytes = 0;
    bool headers_too_large = false;
};

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::string_view line(data, size * count);
    t->header_bytes += line.size();
    if (t->header_bytes > k_max_response_header_bytes) {
        t->headers_too_large = true;
        return 0; // makes libcurl stop with CURLE_WRITE_ERROR
    }
    if (line.starts_with("HTTP/")) {
        // A new response (after 100 Continue or a redirect): start over.
        t->response.headers.clear();
        return size * count;
    }
    auto colon = line.find(':');
    if (colon != std::string_view::npos)
        t->response.headers.emplace_back(ascii_lower(trim_space(line.substr(0, colon))),
                                         std::string(trim_space(line.substr(colon + 1))));
    return size * count;
}

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    std::size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (t->request->on_body && status >= 200 && status < 300) {
        auto s = t->request->on_body(std::as_bytes(std::span<const char>(data, n)));
        if (!s) {
            t->sink_error = s.error();
            return 0; // makes libcurl stop with CURLE_WRITE_ERROR
        }
        t->response.streamed += n;
        return n;
    }
    if (t->response.body.size() + n > t->request->max_body) {
        t->too_large = true;
        return 0;
    }
    t->response.body.append(data, n);
    return n;
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const auto& body = t->request->body;
    std::size_t n = std::min(size * count, body.size() - t->read_offset);
    std::memcpy(buffer, body.data() + t->read_offset, n);
    t->read_offset += n;
    return n;
}

int on_seek(void* user, curl_off_t offset, int origin) {
    auto* t = static_cast<Transfer*>(user);
    if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > t->request->body.size())
        return CURL_SEEKFUNC_FAIL;
    t->read_offset = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
}

} // namespace

std::optional<std::string> Response::header(std::string_view name) const {
    std::string wanted = ascii_lower(name);
    for (const auto& [n, v] : headers)
        if (n == wanted)
            return v;
    return std::nullopt;
}

struct Client::Impl {
    CURL* curl = nullptr;
};

Client::Client() : m_impl(std::make_unique<Impl>()) {
    global_init();
    m_impl->curl = curl_easy_init();
}

Client::~Client() {
    if (m_impl->curl != nullptr)
        curl_easy_cleanup(m_impl->curl);
}

HttpResult<Response> Client::perform(const Request& request) {
    CURL* curl = m_impl->curl;
    if (curl == nullptr)
        return std::unexpected(HttpError{Error::internal("libcurl could not be initialised"), false});
    curl_easy_reset(curl);

    Transfer t;
    t.curl = curl;
    t.request = &request;
    char error_buffer[CURL_ERROR_SIZE] = {};

    curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    // Keep `..` and `.` segments: they are part of S3 keys.
    curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, request.low_speed_bytes);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.low_speed_time.count()));
    if (!request.ca_bundle.empty())
        curl_easy_setopt(curl, CURLOPT_CAINFO, request.ca_bundle.c_str());
    if (request.timeout.count() > 0)
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "snapshotter/" SNAPSHOTTER_VERSION);

    const auto body_size = static_cast<curl_off_t>(request.body.size());
    if (request.method == "GET") {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (request.method == "PUT") {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, body_size);
    } else if (request.method == "POST") {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
        if (!request.body.empty()) {
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, body_size);
        }
    }

    curl_slist* headers = nullptr;
    for (const auto& [name, value] : request.headers) {
        std::string line = name;
        line += value.empty() ? ";" : ": ";
        line += value;
        headers = curl_slist_append(headers, line.c_str());
    }
    // No "Expect: 100-continue" round trip, and no form content type on POST.
    headers = curl_slist_append(headers, "Expect:");
    if (request.method == "POST" &&
        std::none_of(request.headers.begin(), request.headers.end(),
                     [](const Header& h) { return ascii_lower(h.first) == "content-type"; }))
        headers = curl_slist_append(headers, "Content-Type:");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

    CURLcode code = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);

    if (code == CURLE_OK)
        return std::move(t.response);
    if (t.sink_error)
        return std::unexpected(HttpError{*t.sink_error, false, t.response.streamed});
    // The URL may carry a presigned query: never repeat it unredacted.
    std::string where = redact_url(request.url);
    auto q = where.find('?');
    if (q != std::string::npos)
        where.resize(q);
    if (t.headers_too_large)
        return std::unexpected(
            HttpError{Error::storage(fmt::format("{} {}: response headers larger than {} bytes",
                                                 request.method, where, k_max_response_header_bytes)),
                      false, t.response.streamed});
    if (t.too_large)
        return std::unexpected(HttpError{Error::storage(fmt::format("{} {}: response larger than {} bytes",
                                                                    request.method, where, request.max_body)),
                                         false, t.response.streamed});
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
    Error error = code == CURLE_OPERATION_TIMEDOUT
                      ? Error::timeout(fmt::format("{} {}: {}", request.method, where, redact(detail)))
                      : Error::storage(fmt::format("{} {}: {}", request.method, where, redact(detail)));
    return std::unexpected(HttpError{std::move(error), is_transport_error(code), t.response.streamed});
}

Cause cause_of_curl_code(int code) {
    switch (static_cast<CURLcode>(code)) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
        return Cause::network;
    case CURLE_OPERATION_TIMEDOUT:
        return Cause::timeout;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
        return Cause::reset;
    default:
        return Cause::unspecified;
    }
}

} // namespace snapshotter::http
