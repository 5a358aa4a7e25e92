// The batch API client: the request it sends, how strictly it reads hostile
// answers, where credentials go, and downloads checked byte by byte, against
// an in-process fake server (tests/unit/lfs_fake_server.hpp).
#include "snapshotter/lfs/batch.hpp"

#include "lfs_fake_server.hpp"
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/hash.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace snapshotter;
using namespace snapshotter::lfs;
using nlohmann::json;
using test::FakeHttpServer;
using test::FakeRequest;
using test::FakeResponse;

namespace {

Pointer pointer_of(const std::string& content) {
    return {sha256_hex(content), content.size()};
}

const Clock::time_point k_now = Clock::time_point{std::chrono::seconds{1'800'000'000}};

Result<std::vector<ObjectAnswer>> parse(const json& answer, const std::vector<Pointer>& requested,
                                        Operation operation = Operation::download) {
    return parse_batch_response(answer.dump(), requested, operation, false, k_now);
}

json download_answer(const Pointer& p, const std::string& href) {
    return {{"oid", p.oid}, {"size", p.size}, {"actions", {{"download", {{"href", href}}}}}};
}

} // namespace

TEST(LfsBatch, TheRequestBody) {
    auto p = pointer_of("hello");
    auto body = json::parse(batch_request_body(Operation::download, std::vector<Pointer>{p}));
    EXPECT_EQ(body["operation"], "download");
    EXPECT_EQ(body["transfers"], json::array({"basic"}));
    EXPECT_EQ(body["hash_algo"], "sha256");
    EXPECT_EQ(body["objects"], json::array({{{"oid", p.oid}, {"size", 5}}}));
}

TEST(LfsBatch, AnswersParseWithActionsExpiriesAndPerObjectErrors) {
    auto a = pointer_of("a"), b = pointer_of("b");
    json answer = {{"transfer", "basic"},
                   {"objects",
                    {{{"oid", a.oid},
                      {"size", 1},
                      {"actions",
                       {{"download",
                         {{"href", "https://cdn.example/a?sig=1"},
                          {"header", {{"Authorization", "Bearer t"}}},
                          {"expires_in", 60},
                          {"expires_at", "2000-01-01T00:00:00Z"}}}}}},
                     {{"oid", b.oid}, {"size", 1}, {"error", {{"code", 404}, {"message", "Object does not exist"}}}}}}};
    auto parsed = parse(answer, {a, b});
    ASSERT_TRUE(parsed) << parsed.error().message;
    ASSERT_EQ(parsed->size(), 2u);
    const auto& first = (*parsed)[0];
    ASSERT_TRUE(first.download);
    EXPECT_EQ(first.download->href, "https://cdn.example/a?sig=1");
    EXPECT_EQ(first.download->header, (std::vector<http::Header>{{"Authorization", "Bearer t"}}));
    EXPECT_EQ(first.download->expires, k_now + std::chrono::seconds{60}) << "expires_in wins over expires_at";
    EXPECT_FALSE(is_expired(*first.download, k_now));
    EXPECT_TRUE(is_expired(*first.download, k_now + std::chrono::seconds{45}));
    EXPECT_EQ((*parsed)[1].error_code, 404);
}

TEST(LfsBatch, HostileAnswersAreProtocolErrors) {
    auto a = pointer_of("a");
    auto other = pointer_of("other");
    const json good = download_answer(a, "https://cdn.example/a");
    std::vector<json> hostile = {
        json::array(),
        {{"objects", "x"}},
        {{"transfer", "tus"}, {"objects", {good}}},
        {{"hash_algo", "sha512"}, {"objects", {good}}},
        {{"objects", {good, good}}},                                        // more answers than asked
        {{"objects", {download_answer(other, "https://cdn.example/o")}}},   // not requested
        {{"objects", json::array()}},                                       // left out
        {{"objects", {{{"oid", a.oid}, {"size", 2}, {"actions", good["actions"]}}}}}, // wrong size
        {{"objects", {{{"oid", a.oid}, {"size", 1}}}}},                     // no action, no error
        {{"objects", {download_answer(a, "ftp://cdn.example/a")}}},
        {{"objects", {download_answer(a, "http://cdn.example/a")}}},        // http not allowed
        {{"objects", {download_answer(a, "https://cdn.example/a b")}}},
        {{"objects", {download_answer(a, "https://cdn.example/" + std::string(9000, 'a'))}}},
        {{"objects", {{{"oid", a.oid}, {"size", 1}, {"error", {{"code", "x"}}}}}}},
        {{"objects", {{{"oid", a.oid}, {"size", 1}, {"error", {{"code", 42}}}}}}},
    };
    json many_headers = good;
    for (int i = 0; i < 40; ++i)
        many_headers["actions"]["download"]["header"]["X-" + std::to_string(i)] = "v";
    hostile.push_back({{"objects", {many_headers}}});
    json crlf = good;
    crlf["actions"]["download"]["header"]["X-Evil"] = "a\r\nAuthorization: Basic x";
    hostile.push_back({{"objects", {crlf}}});
    json expiry = good;
    expiry["actions"]["download"]["expires_in"] = 99999999999LL;
    hostile.push_back({{"objects", {expiry}}});
    for (const auto& answer : hostile) {
        auto parsed = parse(answer, {a});
        ASSERT_FALSE(parsed) << answer.dump().substr(0, 200);
        EXPECT_EQ(parsed.error().cause, Cause::protocol) << parsed.error().message;
    }
    EXPECT_FALSE(parse_batch_response(std::string(k_max_batch_response_bytes + 1, ' '), std::vector<Pointer>{a},
                                      Operation::download, false, k_now));
}

TEST(LfsBatch, CredentialsGoOnlyToTheServersOrigin) {
    Endpoint endpoint{"https://lfs.example/repo.git/info/lfs", "user", "s3cret-token", RedirectPolicy::same_origin,
                      false};
    auto has_auth = [](const std::vector<http::Header>& headers) {
        for (const auto& [name, value] : headers)
            if (name == "Authorization")
                return true;
        return false;
    };
    EXPECT_TRUE(has_auth(request_headers(endpoint, "https://lfs.example/repo.git/info/lfs/objects/batch", {}, {})));
    EXPECT_TRUE(has_auth(request_headers(endpoint, "https://lfs.example:443/objects/x", origin_of("https://lfs.example/x"), {})));
    EXPECT_FALSE(has_auth(request_headers(endpoint, "https://cdn.example/x", origin_of("https://cdn.example/x"), {})));
    EXPECT_FALSE(has_auth(request_headers(endpoint, "http://lfs.example/x", {}, {})));
    EXPECT_FALSE(has_auth(request_headers(endpoint, "https://lfs.example:8443/x", {}, {})));
    // The action's own header goes to its href's origin only, and its Authorization wins.
    std::vector<http::Header> action{{"Authorization", "Bearer action"}};
    auto own = request_headers(endpoint, "https://cdn.example/x", origin_of("https://cdn.example/x"), action);
    ASSERT_EQ(own.size(), 1u);
    EXPECT_EQ(own[0].second, "Bearer action");
    EXPECT_TRUE(request_headers(endpoint, "https://elsewhere.example/x", origin_of("https://cdn.example/x"), action)
                    .empty());
    auto same = request_headers(endpoint, "https://lfs.example/x", origin_of("https://lfs.example/x"), action);
    ASSERT_EQ(same.size(), 1u) << "no Basic beside the action's Authorization";
}

TEST(LfsBatch, DownloadsFromAnotherOriginGetNoCredentialsAndAreChecked) {
    const std::string content = "the large file's bytes";
    const Pointer good = pointer_of(content);
    const Pointer bad = pointer_of("something else entirely");
    FakeHttpServer objects([&](const FakeRequest& r) {
        if (r.path == "/good")
            return FakeResponse{200, {}, content};
        return FakeResponse{200, {}, content}; // served for `bad`: the wrong bytes
    });
    FakeHttpServer server([&](const FakeRequest& r) {
        auto body = json::parse(r.body);
        json list = json::array();
        for (const auto& o : body["objects"]) {
            const std::string path = o["oid"] == good.oid ? "/good" : "/bad";
            list.push_back(download_answer({o["oid"], o["size"]}, objects.url() + path));
        }
        return FakeResponse{200, {{"Content-Type", "application/vnd.git-lfs+json"}}, json{{"objects", list}}.dump()};
    });
    Client client({server.url() + "/repo.git/info/lfs", "user", "s3cret-token", RedirectPolicy::same_origin, true});
    auto answers = client.batch(Operation::download, std::vector<Pointer>{good, bad});
    ASSERT_TRUE(answers) << answers.error().message;
    ASSERT_EQ(server.requests().size(), 1u);
    const auto& batch = server.requests()[0];
    EXPECT_EQ(batch.path, "/repo.git/info/lfs/objects/batch");
    EXPECT_EQ(batch.headers.at("accept"), "application/vnd.git-lfs+json");
    EXPECT_EQ(batch.headers.at("content-type"), "application/vnd.git-lfs+json");
    EXPECT_TRUE(batch.headers.at("authorization").starts_with("Basic "));

    auto store = storage::open_memory("lfs-batch-download");
    for (const auto& answer : *answers) {
        const std::string key = "k/" + answer.object.oid;
        auto s = client.download(*answer.download, answer.object, [&] { return store->create(key, Overwrite::no); });
        auto head = store->head(key);
        ASSERT_TRUE(head);
        if (answer.object == good) {
            ASSERT_TRUE(s) << s.error().message;
            EXPECT_TRUE(head->has_value());
        } else {
            ASSERT_FALSE(s);
            EXPECT_EQ(s.error().kind, ErrorKind::Integrity);
            EXPECT_FALSE(head->has_value()) << "a mismatching object is never committed";
        }
    }
    for (const auto& r : objects.requests())
        EXPECT_FALSE(r.headers.contains("authorization")) << "another origin got the token";
}

TEST(LfsBatch, RefusalsAndRedirectsFollowTheGitRules) {
    FakeHttpServer elsewhere([](const FakeRequest&) { return FakeResponse{200, {}, "{\"objects\":[]}"}; });
    FakeHttpServer server([&](const FakeRequest& r) {
        if (r.path.starts_with("/moved"))
            return FakeResponse{307, {{"Location", "/repo/objects/batch"}}, ""};
        if (r.path.starts_with("/away"))
            return FakeResponse{307, {{"Location", elsewhere.url() + "/objects/batch"}}, ""};
        if (r.path.starts_with("/denied"))
            return FakeResponse{403, {}, "{\"message\":\"no access\"}"};
        return FakeResponse{200, {}, "{\"objects\":[]}"};
    });
    auto p = pointer_of("x");
    std::vector<Pointer> none;
    Client moved({server.url() + "/moved", "u", "s3cret-token", RedirectPolicy::same_origin, true});
    EXPECT_TRUE(moved.batch(Operation::download, none));
    EXPECT_TRUE(server.requests().back().headers.contains("authorization"));

    Client away({server.url() + "/away", "u", "s3cret-token", RedirectPolicy::same_origin, true});
    auto refused = away.batch(Operation::download, none);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("refused a redirect"), std::string::npos);
    EXPECT_TRUE(elsewhere.requests().empty());

    Client any({server.url() + "/away", "u", "s3cret-token", RedirectPolicy::any_without_credentials, true});
    EXPECT_TRUE(any.batch(Operation::download, none));
    ASSERT_EQ(elsewhere.requests().size(), 1u);
    EXPECT_FALSE(elsewhere.requests()[0].headers.contains("authorization"));

    Client denied({server.url() + "/denied", "u", "s3cret-token", RedirectPolicy::same_origin, true});
    auto error = denied.batch(Operation::download, std::vector<Pointer>{p});
    ASSERT_FALSE(error);
    EXPECT_EQ(error.error().cause, Cause::refused);
    EXPECT_NE(error.error().message.find("403"), std::string::npos);
    EXPECT_NE(error.error().message.find("no access"), std::string::npos);
}

TEST(LfsBatch, UploadPutsTheBytesThenVerifies) {
    const std::string content = "upload me";
    const Pointer p = pointer_of(content);
    FakeHttpServer server([](const FakeRequest&) { return FakeResponse{200, {}, ""}; });
    Client client({server.url() + "/lfs", "u", "s3cret-token", RedirectPolicy::same_origin, true});
    Action put{server.url() + "/upload/" + p.oid, {{"X-Upload", "1"}}, std::nullopt};
    Action verify{server.url() + "/verify", {}, std::nullopt};
    auto s = client.upload(put, verify, p, std::as_bytes(std::span(content.data(), content.size())));
    ASSERT_TRUE(s) << s.error().message;
    auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].method, "PUT");
    EXPECT_EQ(requests[0].body, content);
    EXPECT_EQ(requests[0].headers.at("x-upload"), "1");
    EXPECT_EQ(requests[1].method, "POST");
    EXPECT_EQ(json::parse(requests[1].body), (json{{"oid", p.oid}, {"size", content.size()}}));
}
