// GitLab REST API v4: GET /groups/:id/projects?include_subgroups=true and
// GET /users/:user_id/projects; per_page=100; the next page from the Link
// header (rel="next"), else from X-Next-Page (offset pagination).
// A user's projects are listed with keyset pagination (the "Projects"
// resource supports it with order_by=id); a group's projects have offset
// pagination only, so that listing asks for none (GitLab ignores it there).
// https://docs.gitlab.com/api/groups/#list-projects
// https://docs.gitlab.com/api/projects/#list-a-users-projects
// https://docs.gitlab.com/api/rest/#pagination
// https://docs.gitlab.com/api/rest/#keyset-based-pagination
#include "snapshotter/source/forge.hpp"

#include <fmt/format.h>

namespace snapshotter::source {
namespace {

using nlohmann::json;

class GitLab final : public Forge {
  public:
    explicit GitLab(const job::Source& source) : m_source(source) {}

    [[nodiscard]] Result<std::string> first_page_url(const json* /*identity*/) const override {
        // The group's full path, URL-encoded, stands for its id ("acme%2Fplatform").
        if (m_source.scope == job::SourceScope::group)
            return fmt::format(
                "{}/groups/{}/projects?include_subgroups=true&order_by=id&sort=asc&per_page=100",
                m_source.api_url, percent_encode(m_source.owner));
        return fmt::format("{}/users/{}/projects?pagination=keyset&order_by=id&sort=asc&per_page=100",
                           m_source.api_url, percent_encode(m_source.owner));
    }

    [[nodiscard]] std::vector<http::Header> auth_headers(const std::string& token,
                                                         const std::string& /*username*/) const override {
        std::vector<http::Header> h = {{"Accept", "application/json"}};
        if (!token.empty())
            h.emplace_back("PRIVATE-TOKEN", token);
        return h;
    }

    [[nodiscard]] Result<Page> parse_page(const http::Response& response,
                                          const std::string& url) const override {
        auto body = parse_json_body(response, json::value_t::array);
        if (!body)
            return fail(body.error());
        Page page;
        for (const auto& r : *body) {
            if (!r.is_object())
                continue;
            RemoteRepository repo;
            repo.full_name = json_string(r, "path_with_namespace");
            repo.https_url = json_string(r, "http_url_to_repo");
            repo.ssh_url = json_string(r, "ssh_url_to_repo");
            repo.archived = json_bool(r, "archived");
            auto parent = r.find("forked_from_project");
            repo.fork = parent != r.end() && parent->is_object();
            repo.visibility = json_string(r, "visibility");
            // "topics" since GitLab 14.0; "tag_list" before (deprecated).
            for (const char* key : {"topics", "tag_list"}) {
                auto t = r.find(key);
                if (t == r.end() || !t->is_array() || !repo.topics.empty())
                    continue;
                for (const auto& topic : *t)
                    if (topic.is_string())
                        repo.topics.push_back(topic.get<std::string>());
            }
            repo.pushed_at = parse_iso8601(json_string(r, "last_activity_at"));
            repo.has_wiki = json_bool(r, "wiki_enabled");
            if (repo.has_wiki) {
                repo.wiki_https_url = wiki_url_of(repo.https_url);
                repo.wiki_ssh_url = repo.ssh_url.empty() ? std::string() : wiki_url_of(repo.ssh_url);
            }
            page.repositories.push_back(std::move(repo));
        }
        if (auto link = response.header("link"))
            page.next_url = link_next(*link);
        if (page.next_url.empty())
            if (auto next = response.header("x-next-page"); next && !next->empty())
                page.next_url = with_query(url, "page", *next);
        return page;
    }

    [[nodiscard]] std::string_view git_username() const override { return "oauth2"; }

  private:
    const job::Source& m_source;
};

} // namespace

std::unique_ptr<Forge> make_gitlab(const job::Source& source) {
    return std::make_unique<GitLab>(source);
}

} // namespace snapshotter::source
