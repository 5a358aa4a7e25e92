#include "snapshotter/source/forge.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <fmt/format.h>

namespace snapshotter::source {

using nlohmann::json;

std::string Forge::identity_url(bool /*has_token*/) const {
    return {};
}

std::unique_ptr<Forge> make_forge(const job::Source& source) {
    if (source.type == job::ForgeType::github)
        return make_github(source);
    if (source.type == job::ForgeType::gitlab)
        return make_gitlab(source);
    if (source.type == job::ForgeType::gitea)
        return make_gitea(source);
    return make_bitbucket(source);
}

std::string link_next(std::string_view link) {
    // Link: <url>; rel="next", <url>; rel="last"  (RFC 8288; params may be in any order)
    std::size_t pos = 0;
    while (pos < link.size()) {
        auto open = link.find('<', pos);
        if (open == std::string_view::npos)
            return {};
        auto close = link.find('>', open);
        if (close == std::string_view::npos)
            return {};
        auto end = link.find('<', close);
        std::string_view params =
            link.substr(close + 1, end == std::string_view::npos ? link.npos : end - close - 1);
        std::string lowered(params);
        for (auto& c : lowered)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        lowered.erase(std::remove(lowered.begin(), lowered.end(), ' '), lowered.end());
        if (lowered.find("rel=\"next\"") != std::string::npos ||
            lowered.find("rel=next") != std::string::npos)
            return std::string(link.substr(open + 1, close - open - 1));
        if (end == std::string_view::npos)
            return {};
        pos = end;
    }
    return {};
}

std::string percent_encode(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string with_query(std::string_view url, std::string_view name, std::string_view value) {
    auto q = url.find('?');
    std::string base(url.substr(0, q));
    std::vector<std::string> params;
    if (q != std::string_view::npos) {
        std::string_view rest = url.substr(q + 1);
        while (!rest.empty()) {
            auto amp = rest.find('&');
            std::string_view p = rest.substr(0, amp);
            auto eq = p.find('=');
            if (!p.empty() && p.substr(0, eq) != name)
                params.emplace_back(p);
            rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        }
    }
    params.push_back(fmt::format("{}={}", name, percent_encode(value)));
    return base + "?" + fmt::format("{}", fmt::join(params, "&"));
}

std::string wiki_url_of(std::string_view clone_url) {
    std::string_view base = clone_url;
    if (base.ends_with(".git"))
        base.remove_suffix(4);
    return std::string(base) + ".wiki.git";
}

Result<Page> parse_github_style_page(const http::Response& response, const char* pushed_at_key,
                                     std::string (*visibility_of)(const json& r)) {
    auto body = parse_json_body(response, json::value_t::array);
    if (!body)
        return fail(body.error());
    Page page;
    for (const auto& r : *body) {
        if (!r.is_object())
            continue;
        RemoteRepository repo;
        repo.full_name = json_string(r, "full_name");
        repo.https_url = json_string(r, "clone_url");
        repo.ssh_url = json_string(r, "ssh_url");
        repo.archived = json_bool(r, "archived");
        repo.fork = json_bool(r, "fork");
        repo.has_wiki = json_bool(r, "has_wiki");
        if (auto t = r.find("topics"); t != r.end() && t->is_array())
            for (const auto& topic : *t)
                if (topic.is_string())
                    repo.topics.push_back(topic.get<std::string>());
        repo.visibility = visibility_of(r);
        repo.pushed_at = parse_iso8601(json_string(r, pushed_at_key));
        if (repo.has_wiki) {
            repo.wiki_https_url = wiki_url_of(repo.https_url);
            repo.wiki_ssh_url = repo.ssh_url.empty() ? std::string() : wiki_url_of(repo.ssh_url);
        }
        page.repositories.push_back(std::move(repo));
    }
    if (auto link = response.header("link"))
        page.next_url = link_next(*link);
    return page;
}

std::string json_string(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool json_bool(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

Result<json> parse_json_body(const http::Response& response, json::value_t kind) {
    json body = json::parse(response.body, nullptr, false);
    if (body.is_discarded())
        return fail(Error::git(
            fmt::format("the API answered HTTP {} with a body that is not JSON", response.status)));
    if (body.type() != kind)
        return fail(
            Error::git(fmt::format("the API answered with a JSON {} where an {} was expected",
                                   body.type_name(), kind == json::value_t::array ? "array" : "object")));
    return body;
}

} // namespace snapshotter::source
