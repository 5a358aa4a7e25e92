#include "snapshotter/lfs/batch.hpp"

#include "snapshotter/util/backoff.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/json.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/stop.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <thread>

namespace snapshotter::lfs {

using nlohmann::json;

namespace {

constexpr std::string_view k_media_type = "application/vnd.git-lfs+json";
constexpr long long k_max_expires_in = 2147483647;

Error protocol(std::string_view what) {
    return Error::git(fmt::format("LFS batch answer: {}", what), Cause::protocol);
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// A header name as RFC 9110 allows it (a token), and a value without CR, LF or NUL.
bool is_header_name(std::string_view name) {
    return !name.empty() && name.size() <= k_max_header_bytes &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) ||
                      std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
           });
}

bool is_header_value(std::string_view value) {
    return value.size() <= k_max_header_bytes && std::none_of(value.begin(), value.end(), [](char c) {
               return c == '\r' || c == '\n' || c == '\0';
           });
}

// A printable, bounded copy of a server's message.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 200))
        out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
    return redact(out);
}

// Parse one action object of an answer.
Result<Action> parse_action(const json& j, std::string_view name, bool allow_http, Clock::time_point now) {
    if (!j.is_object())
        return fail(protocol(fmt::format("action {} is not an object", name)));
    Action action;
    auto href = j.find("href");
    if (href == j.end() || !href->is_string() ||
        href->get_ref<const std::string&>().size() > k_max_href_bytes)
        return fail(protocol(fmt::format("action {} has no usable href", name)));
    action.href = href->get<std::string>();
    auto origin = origin_of(action.href);
    if (!origin || (origin->scheme == "http" && !allow_http) ||
        std::any_of(action.href.begin(), action.href.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return fail(protocol(fmt::format("action {} href {:?} is not an allowed http(s) URL{}", name,
                                         printable(redact_url(action.href)),
                                         allow_http ? "" : " (http:// needs options.allow_http)")));
    if (auto header = j.find("header"); header != j.end() && !header->is_null()) {
        if (!header->is_object() || header->size() > k_max_action_headers)
            return fail(protocol(fmt::format("action {} header is not an object of at most {} entries", name,
                                             k_max_action_headers)));
        for (const auto& [key, value] : header->items()) {
            if (!value.is_string() || !is_header_name(key) ||
                !is_header_value(value.get_ref<const std::string&>()))
                return fail(protocol(fmt::format("action {} has a malformed header", name)));
            action.header.emplace_back(key, value.get<std::string>());
        }
    }
    if (auto in = j.find("expires_in"); in != j.end() && !in->is_null()) {
        auto seconds = json_integer<long long>(*in);
        if (!seconds || *seconds > k_max_expires_in || *seconds < -k_max_expires_in)
            return fail(protocol(fmt::format("action {} expires_in is not an integer within ±2^31", name)));
        action.expires = now + std::chrono::seconds{*seconds};
    } else if (auto at = j.find("expires_at"); at != j.end() && !at->is_null()) {
        if (!at->is_string())
            return fail(protocol(fmt::format("action {} expires_at is not a string", name)));
        // An expiry we cannot read is treated as none: the download's own
        // failure then says more than a guess would.
        action.expires = parse_rfc3339(at->get<std::string>());
    }
    return action;
}

Cause cause_of_status(long status) {
    if (status == 429)
        return Cause::http_429;
    if (status >= 500)
        return Cause::http_5xx;
    return Cause::refused;
}

bool is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// The absolute target of a Location header `location` given on `current`.
std::optional<std::string> resolve_location(std::string_view current, std::string_view location) {
    if (location.find("://") != std::string_view::npos)
        return std::string(location);
    if (!location.starts_with('/') || location.starts_with("//"))
        return std::nullopt;
    auto scheme_end = current.find("://");
    auto path_start = current.find('/', scheme_end + 3);
    return std::string(current.substr(0, path_start)) + std::string(location);
}

} // namespace

std::string_view to_string(Operation operation) {
    return operation == Operation::upload ? "upload" : "download";
}

std::string batch_request_body(Operation operation, std::span<const Pointer> objects) {
    json list = json::array();
    for (const auto& o : objects)
        list.push_back({{"oid", o.oid}, {"size", o.size}});
    return json{{"operation", to_string(operation)},
                {"transfers", json::array({"basic"})},
                {"objects", std::move(list)},
                {"hash_algo", "sha256"}}
        .dump();
}

Result<std::vector<ObjectAnswer>> parse_batch_response(std::string_view body,
                                                       std::span<const Pointer> requested,
                                                       Operation operation, bool allow_http,
                                                       Clock::time_point now) {
    if (body.size() > k_max_batch_response_bytes)
        return fail(protocol(fmt::format("larger than {} bytes", k_max_batch_response_bytes)));
    auto parsed = parse_json_bounded(body, 8);
    if (!parsed)
        return fail(protocol(parsed.error().message));
    const json& j = *parsed;
    if (!j.is_object())
        return fail(protocol("not a JSON object"));
    if (auto t = j.find("transfer"); t != j.end() && !t->is_null() && *t != "basic")
        return fail(protocol("the server chose a transfer other than basic"));
    if (auto h = j.find("hash_algo"); h != j.end() && !h->is_null() && *h != "sha256")
        return fail(protocol("the server's hash_algo is not sha256"));
    auto objects = j.find("objects");
    if (objects == j.end() || !objects->is_array())
        return fail(protocol("no objects array"));
    if (objects->size() > requested.size())
        return fail(
            protocol(fmt::format("{} objects answered for {} requested", objects->size(), requested.size())));
    std::vector<ObjectAnswer> out;
    std::vector<bool> answered(requested.size(), false);
    for (const auto& o : *objects) {
        if (!o.is_object() || !o.contains("oid") || !o.at("oid").is_string())
            return fail(protocol("an object without an oid"));
        const auto& oid = o.at("oid").get_ref<const std::string&>();
        auto it =
            std::find_if(requested.begin(), requested.end(), [&](const Pointer& p) { return p.oid == oid; });
        if (it == requested.end())
            return fail(protocol(fmt::format("an answer for an object not requested ({})", printable(oid))));
        const auto index = static_cast<std::size_t>(it - requested.begin());
        if (answered[index])
            return fail(protocol(fmt::format("object {} answered twice", oid)));
        answered[index] = true;
        auto size = o.contains("size") ? json_integer<std::uint64_t>(o.at("size")) : std::nullopt;
        ObjectAnswer answer{*it, {}, {}, {}, 0, {}};
        if (auto err = o.find("error"); err != o.end() && !err->is_null()) {
            auto code =
                err->is_object() && err->contains("code") ? json_integer<int>(err->at("code")) : std::nullopt;
            if (!code || *code < 100 || *code > 599)
                return fail(protocol(fmt::format("object {} has an error without a valid code", oid)));
            answer.error_code = *code;
            if (auto m = err->find("message"); m != err->end() && m->is_string())
                answer.error_message = printable(m->get<std::string>());
            out.push_back(std::move(answer));
            continue;
        }
        if (!size || *size != it->size)
            return fail(protocol(fmt::format("object {} answered with another size", oid)));
        if (auto actions = o.find("actions"); actions != o.end() && !actions->is_null()) {
            if (!actions->is_object())
                return fail(protocol(fmt::format("object {} actions is not an object", oid)));
            for (const auto& [name, value] : actions->items()) {
                std::optional<Action>* slot = name == "download" ? &answer.download
                                              : name == "upload" ? &answer.upload
                                              : name == "verify" ? &answer.verify
                                                                 : nullptr;
                if (slot == nullptr)
                    continue; // an action of another operation or transfer is not ours to run
                auto action = parse_action(value, name, allow_http, now);
                if (!action)
                    return fail(action.error());
                *slot = std::move(*action);
            }
        }
        if (operation == Operation::download && !answer.download)
            return fail(protocol(fmt::format("object {} has neither a download action nor an error", oid)));
        out.push_back(std::move(answer));
    }
    if (out.size() != requested.size())
        return fail(protocol(fmt::format("{} of {} requested objects were not answered",
                                         requested.size() - out.size(), requested.size())));
    return out;
}

std::vector<http::Header> request_headers(const Endpoint& endpoint, std::string_view url,
                                          const std::optional<Origin>& action_origin,
                                          const std::vector<http::Header>& action_header) {
    std::vector<http::Header> out;
    const auto origin = origin_of(url);
    bool authorization = false;
    if (origin && action_origin && origin == action_origin)
        for (const auto& [name, value] : action_header) {
            authorization = authorization || iequals(name, "Authorization");
            out.emplace_back(name, value);
        }
    const bool has_credentials = !endpoint.username.empty() || !endpoint.password.empty();
    if (has_credentials && !authorization && origin && origin == origin_of(endpoint.url))
        out.emplace_back("Authorization",
                         "Basic " + base64_encode(endpoint.username + ":" + endpoint.password));
    return out;
}

bool is_expired(const Action& action, Clock::time_point now, std::chrono::seconds margin) {
    return action.expires && *action.expires <= now + margin;
}

Client::Client(Endpoint endpoint) : m_endpoint(std::move(endpoint)), m_origin(origin_of(m_endpoint.url)) {}

std::string Client::describe() const {
    return redact_url(m_endpoint.url);
}

Result<http::Response> Client::send(http::Request request, const std::optional<Origin>& action_origin,
                                    const std::vector<http::Header>& action_header) {
    const auto base_headers = request.headers;
    const auto start_origin = origin_of(request.url);
    for (int hop = 0;; ++hop) {
        request.headers = base_headers;
        for (auto& h : request_headers(m_endpoint, request.url, action_origin, action_header))
            request.headers.push_back(std::move(h));
        auto response = m_http.perform(request);
        if (!response) {
            auto error = response.error().error;
            error.message = redact(error.message); // http names the method and the URL already
            if (!response.error().transport)
                return fail(error); // the body sink's own failure (storage, a size check) keeps its kind
            return fail(
                Error::git(error.message, error.cause == Cause::unspecified ? Cause::network : error.cause));
        }
        if (!is_redirect(response->status))
            return std::move(*response);
        auto location = response->header("location");
        auto target = location ? resolve_location(request.url, *location) : std::nullopt;
        if (!target)
            return fail(
                Error::git(fmt::format("{}: a redirect without a usable Location", redact_url(request.url))));
        if (hop + 1 >= k_max_redirects)
            return fail(Error::git(
                fmt::format("{}: more than {} redirects", redact_url(request.url), k_max_redirects)));
        auto target_origin = origin_of(*target);
        const bool plain_http = target_origin && target_origin->scheme == "http" && !m_endpoint.allow_http;
        auto decision = start_origin ? decide_redirect(*start_origin, *target, m_endpoint.redirects)
                                     : RedirectAction::refuse;
        if (plain_http || decision == RedirectAction::refuse)
            return fail(Error::git(fmt::format("{}: refused a redirect to {} (options.http.follow_redirects "
                                               "\"{}\"; credentials stay with {})",
                                               redact_url(request.url), redact_url(*target),
                                               redirect_policy_name(m_endpoint.redirects), describe())));
        // 303 (and 301/302 of a POST, as browsers and git do) becomes a GET.
        if (response->status == 303 ||
            ((response->status == 301 || response->status == 302) && request.method == "POST")) {
            request.method = "GET";
            request.body = {};
        }
        request.url = std::move(*target);
    }
}

Result<std::vector<ObjectAnswer>> Client::batch(Operation operation, std::span<const Pointer> objects) {
    if (objects.size() > k_batch_size)
        return fail(
            Error::internal(fmt::format("a batch of {} objects (at most {})", objects.size(), k_batch_size)));
    const std::string body = batch_request_body(operation, objects);
    const std::string url = m_endpoint.url + "/objects/batch";
    for (int attempt = 0;; ++attempt) {
        http::Request request{
            .method = "POST",
            .url = url,
            .headers = {{"Accept", std::string(k_media_type)}, {"Content-Type", std::string(k_media_type)}},
            .body = http::as_body(body),
            .on_body = {},
            .max_body = k_max_batch_response_bytes,
            .timeout = std::chrono::minutes{2}};
        auto response = send(request, std::nullopt, {});
        Error error;
        if (!response) {
            error = response.error();
        } else if (response->ok()) {
            return parse_batch_response(response->body, objects, operation, m_endpoint.allow_http,
                                        current_time());
        } else {
            std::string message;
            if (auto parsed = parse_json_bounded(response->body, 4); parsed && parsed->is_object() &&
                                                                     parsed->contains("message") &&
                                                                     parsed->at("message").is_string())
                message = ": " + printable(parsed->at("message").get<std::string>());
            error = Error::git(fmt::format("LFS batch {} at {}: HTTP {}{}", to_string(operation), describe(),
                                           response->status, message),
                               cause_of_status(response->status));
        }
        if (!is_transient(error.cause) || attempt + 1 >= k_max_attempts || stop_requested())
            return fail(error);
        std::this_thread::sleep_for(
            backoff_delay(attempt, std::chrono::milliseconds{200}, std::chrono::seconds{5}));
    }
}

Status Client::download(const Action& action, const Pointer& object,
                        const std::function<Result<std::unique_ptr<ObjectWriter>>()>& open_writer) {
    const auto action_origin = origin_of(action.href);
    for (int attempt = 0;; ++attempt) {
        auto writer = open_writer();
        if (!writer)
            return fail(writer.error());
        Sha256 hash;
        std::uint64_t received = 0;
        bool too_long = false;
        http::Request request{.method = "GET", .url = action.href, .headers = {}, .body = {}};
        request.on_body = [&](std::span<const std::byte> chunk) -> Status {
            received += chunk.size();
            if (received > object.size) {
                too_long = true;
                return fail(Error::integrity(
                    fmt::format("LFS object {}: more than {} bytes served", object.oid, object.size)));
            }
            hash.update(chunk);
            return (*writer)->write(chunk);
        };
        auto response = send(request, action_origin, action.header);
        Error error;
        if (response && response->ok()) {
            const std::string digest = hash.hex_digest();
            if (received != object.size || digest != object.oid) {
                (*writer)->abort();
                return fail(Error::integrity(
                    fmt::format("LFS object {}: {} bytes with SHA-256 {} served for {} bytes", object.oid,
                                received, digest, object.size)));
            }
            return (*writer)->commit();
        }
        (*writer)->abort();
        if (too_long)
            return fail(Error::integrity(
                fmt::format("LFS object {}: more than {} bytes served", object.oid, object.size)));
        if (!response)
            error = response.error();
        else
            error = Error::git(fmt::format("LFS download of {} from {}: HTTP {}", object.oid,
                                           redact_url(action.href.substr(0, action.href.find('?'))),
                                           response->status),
                               cause_of_status(response->status));
        if (!is_transient(error.cause) || attempt + 1 >= k_max_attempts || stop_requested())
            return fail(error);
        std::this_thread::sleep_for(
            backoff_delay(attempt, std::chrono::milliseconds{200}, std::chrono::seconds{5}));
    }
}

Status Client::upload(const Action& upload, const std::optional<Action>& verify, const Pointer& object,
                      std::span<const std::byte> content) {
    if (content.size() != object.size)
        return fail(Error::internal(
            fmt::format("LFS upload of {}: {} bytes given for {}", object.oid, content.size(), object.size)));
    const std::string verify_body = json{{"oid", object.oid}, {"size", object.size}}.dump();
    struct Step {
        const Action* action;
        const char* method;
        std::span<const std::byte> body;
        std::string_view type;
    };
    std::vector<Step> steps{{&upload, "PUT", content, "application/octet-stream"}};
    if (verify)
        steps.push_back({&*verify, "POST", http::as_body(verify_body), k_media_type});
    for (const auto& step : steps) {
        for (int attempt = 0;; ++attempt) {
            http::Request request{.method = step.method,
                                  .url = step.action->href,
                                  .headers = {{"Content-Type", std::string(step.type)}},
                                  .body = step.body};
            if (verify && step.action == &*verify)
                request.headers.emplace_back("Accept", std::string(k_media_type));
            auto response = send(request, origin_of(step.action->href), step.action->header);
            if (response && response->ok())
                break;
            Error error =
                response
                    ? Error::git(fmt::format(
                                     "LFS {} of {} to {}: HTTP {}",
                                     step.method == std::string_view("PUT") ? "upload" : "verify", object.oid,
                                     redact_url(step.action->href.substr(0, step.action->href.find('?'))),
                                     response->status),
                                 cause_of_status(response->status))
                    : response.error();
            if (!is_transient(error.cause) || attempt + 1 >= k_max_attempts || stop_requested())
                return fail(error);
            std::this_thread::sleep_for(
                backoff_delay(attempt, std::chrono::milliseconds{200}, std::chrono::seconds{5}));
        }
    }
    return {};
}

} // namespace snapshotter::lfs
