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
                           m_source.scope == "org" ? "orgs" : "users", percent_encode(m_source.owner));
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
        auto body = parse_json_body(response, json::value_t::array);
        if (!body)
            return fail(body.error());
        Page page;
        for (const auto& r : *body) {
            if (!r.is_object())
                continue;
            auto repo = github_style_fields(r);
            repo.visibility = json_bool(r, "private")    ? "private"
                              : json_bool(r, "internal") ? "internal"
                                                         : "public";
            repo.pushed_at = parse_iso8601(json_string(r, "updated_at"));
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

    [[nodiscard]] std::string_view git_username() const override { return "x-access-token"; }

  private:
    const job::Source& m_source;
};

} // namespace

std::unique_ptr<Forge> make_gitea(const job::Source& source) {
    return std::make_unique<Gitea>(source);
}

} // namespace snapshotter::source
