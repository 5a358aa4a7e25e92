// GitHub (and GitHub Enterprise Server) REST API:
//   GET /orgs/{org}/repos, GET /users/{username}/repos, GET /user/repos,
//   GET /orgs/{org}/teams/{team_slug}/repos; per_page=100, Link pagination.
// https://docs.github.com/rest/repos/repos#list-organization-repositories
// https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api
#include "snapshotter/source/forge.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

namespace snapshotter::source {
namespace {

using nlohmann::json;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

class GitHub final : public Forge {
  public:
    explicit GitHub(const job::Source& source) : m_source(source) {}

    [[nodiscard]] std::string identity_url(bool has_token) const override {
        // A user's own private repositories are listed only by /user/repos.
        return m_source.scope == job::SourceScope::user && has_token ? m_source.api_url + "/user"
                                                                     : std::string();
    }

    [[nodiscard]] Result<std::string> first_page_url(const json* identity) const override {
        const auto& api = m_source.api_url;
        if (m_source.scope == job::SourceScope::org)
            return fmt::format("{}/orgs/{}/repos?type=all&per_page=100", api, percent_encode(m_source.owner));
        if (m_source.scope == job::SourceScope::team) {
            auto slash = m_source.owner.find('/');
            return fmt::format("{}/orgs/{}/teams/{}/repos?per_page=100", api,
                               percent_encode(m_source.owner.substr(0, slash)),
                               percent_encode(m_source.owner.substr(slash + 1)));
        }
        if (identity != nullptr && iequals(json_string(*identity, "login"), m_source.owner))
            return fmt::format("{}/user/repos?affiliation=owner&visibility=all&per_page=100", api);
        return fmt::format("{}/users/{}/repos?type=owner&per_page=100", api, percent_encode(m_source.owner));
    }

    [[nodiscard]] std::vector<http::Header> auth_headers(const std::string& token,
                                                         const std::string& /*username*/) const override {
        std::vector<http::Header> h = {{"Accept", "application/vnd.github+json"},
                                       {"X-GitHub-Api-Version", "2022-11-28"}};
        if (!token.empty())
            h.emplace_back("Authorization", "Bearer " + token);
        return h;
    }

    [[nodiscard]] Result<Page> parse_page(const http::Response& response,
                                          const std::string& /*url*/) const override {
        // `visibility` where the API gives it (it says "internal" too), else `private`.
        return parse_github_style_page(response, "pushed_at", [](const json& r) {
            auto visibility = json_string(r, "visibility");
            if (visibility.empty())
                visibility = json_bool(r, "private") ? "private" : "public";
            return visibility;
        });
    }

    [[nodiscard]] std::string_view git_username() const override { return "x-access-token"; }

  private:
    const job::Source& m_source;
};

} // namespace

std::unique_ptr<Forge> make_github(const job::Source& source) {
    return std::make_unique<GitHub>(source);
}

} // namespace snapshotter::source
