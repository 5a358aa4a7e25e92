#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <mutex>
#include <regex>
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

void replace_all(std::string& text, std::string_view needle, std::string_view with) {
    for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + with.size()))
        text.replace(pos, needle.size(), with);
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
    // The password runs to the authority's last '@' (git splits there too),
    // so a raw '@' inside it is redacted with the rest.
    static const std::regex userinfo(R"(([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):([^/\s]*)@)");
    static const std::regex query_secret(
        R"(([?&;](?:access_token|private_token|token|password|passwd|secret|sig|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"']*)",
        std::regex::icase);
    std::string out = std::regex_replace(std::string(url), userinfo, "$1$2:***@");
    return std::regex_replace(out, query_secret, "$1***");
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
