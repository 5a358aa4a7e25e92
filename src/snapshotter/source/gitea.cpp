// Gitea/Forgejo API: GET /orgs/{org}/repos and GET /users/{username}/repos
// with page and limit; Link (rel="next") and X-Total-Count headers.
// https://docs.gitea.com/development/api-usage#pagination
// https://gitea.com/api/swagger#/organization/orgListRepos
#include "snapshotter/source/forge.hpp"

#include <fmt/format.h>

namespace snapshotter::source {
namespace {

using nlohmann::json;

class Gitea final : public Forge {
  public:
    explicit Gitea(const job::Source& source) : m_source(source) {}

    [[nodiscard]] Result<std::string> first_page_url(const json* /*identity*/) const override {
        // limit=50: Gitea's default [api] MAX_RESPONSE_ITEMS; a larger limit is cut to it.
        return fmt::format("{}/{}/{}/repos?limit=50&page=1", m_source.api_url,
                           m_source.scope == job::SourceScope::org ? "orgs" : "users",
                           percent_encode(m_source.owner));
    }

    [[nodiscard]] std::vector<http::Header> auth_headers(const std::string& token,
                                                         const std::string& /*username*/) const override {
        std::vector<http::Header> h = {{"Accept", "application/json"}};
        if (!token.empty())
            h.emplace_back("Authorization", "token " + token);
        return h;
    }

    [[nodiscard]] Result<Page> parse_page(const http::Response& response,
                                          const std::string& /*url*/) const override {
        // Gitea has no push time in the listing: `updated_at` is the nearest.
        return parse_github_style_page(response, "updated_at", [](const json& r) -> std::string {
            return json_bool(r, "private") ? "private" : json_bool(r, "internal") ? "internal" : "public";
        });
    }

    [[nodiscard]] std::string_view git_username() const override { return "x-access-token"; }

  private:
    const job::Source& m_source;
};

} // namespace

std::unique_ptr<Forge> make_gitea(const job::Source& source) {
    return std::make_unique<Gitea>(source);
}

} // namespace snapshotter::source
