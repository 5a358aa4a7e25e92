#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace snapshotter {
namespace {

struct SecretRegistry {
    std::mutex mutex;
    std::vector<std::string> secrets;
};

SecretRegistry& registry() {
    static SecretRegistry r;
    return r;
}

// Every occurrence of `needle` in `text` replaced by `with`, left to right, in
// one pass (replacing in place would move the tail once per occurrence).
void replace_all(std::string& text, std::string_view needle, std::string_view with) {
    std::size_t pos = text.find(needle);
    if (pos == std::string::npos)
        return;
    std::string out;
    out.reserve(text.size());
    std::size_t copied = 0;
    for (; pos != std::string::npos; pos = text.find(needle, copied)) {
        out.append(text, copied, pos - copied);
        out.append(with);
        copied = pos + needle.size();
    }
    out.append(text, copied);
    text = std::move(out);
}

// The ASCII whitespace of ECMAScript's \s in the C locale.
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_scheme_char(char c) {
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
}

// Every `scheme://user:password@` becomes `scheme://user:***@`. The scheme is
// [A-Za-z][A-Za-z0-9+.-]*, the user has no '/', '@', ':' or space, and the
// password runs to the last '@' before the next '/' or space, the way git
// splits the authority. Text without such a form is copied unchanged.
std::string redact_userinfo(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t copied = 0; // text[0, copied) is already in `out`
    for (std::size_t sep = text.find("://"); sep != std::string_view::npos; sep = text.find("://", sep + 1)) {
        // A scheme ends right before "://" and starts with a letter.
        std::size_t start = sep;
        while (start > copied && is_scheme_char(text[start - 1]))
            --start;
        while (start < sep && !is_alpha(text[start]))
            ++start;
        if (start == sep)
            continue;
        std::size_t user_end = sep + 3;
        while (user_end < text.size() && !is_space(text[user_end]) && text[user_end] != '/' &&
               text[user_end] != '@' && text[user_end] != ':')
            ++user_end;
        if (user_end == text.size() || text[user_end] != ':')
            continue;
        std::size_t authority_end = user_end + 1;
        while (authority_end < text.size() && !is_space(text[authority_end]) && text[authority_end] != '/')
            ++authority_end;
        const std::size_t at = text.substr(user_end + 1, authority_end - user_end - 1).rfind('@');
        if (at == std::string_view::npos)
            continue;
        out.append(text.substr(copied, user_end + 1 - copied));
        out.append("***@");
        copied = user_end + 1 + at + 1;
        sep = copied - 1; // the next "://" can only start after this match
    }
    out.append(text.substr(copied));
    return out;
}

// Query parameters that carry credentials, compared without regard to case.
constexpr std::string_view k_secret_params[] = {
    "access_token",
    "private_token",
    "token",
    "password",
    "passwd",
    "secret",
    "sig",
    "signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
};

bool iequals_prefix(std::string_view text, std::string_view prefix) {
    if (text.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char a = text[i], b = prefix[i];
        if (a >= 'A' && a <= 'Z')
            a = static_cast<char>(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = static_cast<char>(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

// Every `?name=value`, `&name=value` or `;name=value` whose name is in
// k_secret_params gets its value (up to '&', a quote or space) replaced by "***".
std::string redact_query_secrets(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t copied = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '?' && text[i] != '&' && text[i] != ';')
            continue;
        const std::string_view rest = text.substr(i + 1);
        for (std::string_view name : k_secret_params) {
            if (!iequals_prefix(rest, name) || rest.size() == name.size() || rest[name.size()] != '=')
                continue;
            const std::size_t value = i + 1 + name.size() + 1;
            std::size_t end = value;
            while (end < text.size() && !is_space(text[end]) && text[end] != '&' && text[end] != '"' &&
                   text[end] != '\'')
                ++end;
            out.append(text.substr(copied, value - copied));
            out.append("***");
            copied = end;
            i = end - 1; // the loop's ++i lands on the character after the value
            break;
        }
    }
    out.append(text.substr(copied));
    return out;
}

} // namespace

void register_secret(std::string_view secret) {
    if (secret.size() < 4)
        return;
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    if (std::find(r.secrets.begin(), r.secrets.end(), secret) == r.secrets.end()) {
        r.secrets.emplace_back(secret);
        // Longest first, so a secret that contains another is replaced whole.
        std::sort(r.secrets.begin(), r.secrets.end(),
                  [](const auto& a, const auto& b) { return a.size() > b.size(); });
    }
}

std::string redact_url(std::string_view url) {
    // Two passes, each a single left-to-right scan, so the cost is linear in
    // the text: redact() runs on whatever a hostile server sends back.
    return redact_query_secrets(redact_userinfo(url));
}

std::string redact(std::string_view text) {
    std::string out = redact_url(text);
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    for (const auto& secret : r.secrets)
        replace_all(out, secret, "***");
    return out;
}

} // namespace snapshotter
