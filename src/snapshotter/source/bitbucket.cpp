// Bitbucket Cloud REST API 2.0: GET /repositories/{workspace}?pagelen=100;
// each page is {"values": [...], "next": "<url>"}, the last has no "next".
// https://developer.atlassian.com/cloud/bitbucket/rest/api-group-repositories/#api-repositories-workspace-get
// https://developer.atlassian.com/cloud/bitbucket/rest/intro/#pagination
#include "snapshotter/source/forge.hpp"
#include "snapshotter/util/hash.hpp"

#include <fmt/format.h>

namespace snapshotter::source {
namespace {

using nlohmann::json;

// A clone href without its "user@" (Bitbucket puts the caller's name there).
std::string without_userinfo(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos)
        return std::string(url);
    auto at = url.find('@', scheme + 3);
    auto slash = url.find('/', scheme + 3);
    if (at == std::string_view::npos || (slash != std::string_view::npos && at > slash))
        return std::string(url);
    return std::string(url.substr(0, scheme + 3)) + std::string(url.substr(at + 1));
}

class Bitbucket final : public Forge {
  public:
    explicit Bitbucket(const job::Source& source) : m_source(source) {}

    [[nodiscard]] Result<std::string> first_page_url(const json* /*identity*/) const override {
        return fmt::format("{}/repositories/{}?pagelen=100", m_source.api_url,
                           percent_encode(m_source.owner));
    }

    [[nodiscard]] std::vector<http::Header> auth_headers(const std::string& token,
                                                         const std::string& username) const override {
        std::vector<http::Header> h = {{"Accept", "application/json"}};
        if (token.empty())
            return h;
        // An access token is a bearer token; an API token or app password goes with its user name.
        if (username.empty())
            h.emplace_back("Authorization", "Bearer " + token);
        else
            h.emplace_back("Authorization", "Basic " + base64_encode(username + ":" + token));
        return h;
    }

    [[nodiscard]] Result<Page> parse_page(const http::Response& response,
                                          const std::string& /*url*/) const override {
        auto body = parse_json_body(response, json::value_t::object);
        if (!body)
            return fail(body.error());
        Page page;
        auto values = body->find("values");
        if (values != body->end() && values->is_array()) {
            for (const auto& r : *values) {
                if (!r.is_object())
                    continue;
                RemoteRepository repo;
                repo.full_name = json_string(r, "full_name");
                if (auto links = r.find("links"); links != r.end() && links->is_object())
                    if (auto clone = links->find("clone"); clone != links->end() && clone->is_array())
                        for (const auto& c : *clone) {
                            if (!c.is_object())
                                continue;
                            auto name = json_string(c, "name");
                            if (name == "https")
                                repo.https_url = without_userinfo(json_string(c, "href"));
                            else if (name == "ssh")
                                repo.ssh_url = json_string(c, "href");
                        }
                auto parent = r.find("parent");
                repo.fork = parent != r.end() && parent->is_object();
                repo.visibility = json_bool(r, "is_private") ? "private" : "public";
                repo.pushed_at = parse_iso8601(json_string(r, "updated_on"));
                repo.has_wiki = json_bool(r, "has_wiki");
                // The wiki is a repository of its own at <repo>.git/wiki.
                if (repo.has_wiki) {
                    repo.wiki_https_url = repo.https_url + "/wiki";
                    repo.wiki_ssh_url = repo.ssh_url.empty() ? std::string() : repo.ssh_url + "/wiki";
                }
                page.repositories.push_back(std::move(repo));
            }
        }
        page.next_url = json_string(*body, "next");
        return page;
    }

    [[nodiscard]] std::string_view git_username() const override { return "x-token-auth"; }

  private:
    const job::Source& m_source;
};

} // namespace

std::unique_ptr<Forge> make_bitbucket(const job::Source& source) {
    return std::make_unique<Bitbucket>(source);
}

} // namespace snapshotter::source
