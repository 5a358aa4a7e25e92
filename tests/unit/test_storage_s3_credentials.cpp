#include "snapshotter/storage/s3/credentials.hpp"
#include "snapshotter/util/redact.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::storage;

namespace {

// A fake world: environment variables, files and HTTP answers by URL.
struct FakeWorld {
    std::map<std::string, std::string> vars;
    std::map<std::string, std::string> files;
    std::map<std::string, http::Response> answers;
    std::vector<http::Request> requests;
    std::vector<std::string> bodies; // copies: a request's body only lives during the call
    Clock::time_point now = Clock::now();

    AwsEnvironment env() {
        AwsEnvironment e;
        e.getenv = [this](std::string_view name) -> std::optional<std::string> {
            auto it = vars.find(std::string(name));
            if (it == vars.end())
                return std::nullopt;
            return it->second;
        };
        e.read_file = [this](const std::string& path) -> Result<std::string> {
            auto it = files.find(path);
            if (it == files.end())
                return fail(Error::not_found(path + ": no such file"));
            return it->second;
        };
        e.fetch = [this](const http::Request& r) -> http::HttpResult<http::Response> {
            requests.push_back(r);
            bodies.emplace_back(reinterpret_cast<const char*>(r.body.data()), r.body.size());
            auto it = answers.find(r.method + " " + r.url);
            if (it == answers.end())
                return std::unexpected(http::HttpError{Error::storage("connection refused"), true});
            return it->second;
        };
        e.now = [this] { return now; };
        return e;
    }
};

http::Response answer(long status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

std::string find_header(const http::Request& r, std::string_view name) {
    for (const auto& [n, v] : r.headers)
        if (n == name)
            return v;
    return {};
}

} // namespace

TEST(Ini, ParsesSectionsCommentsAndNestedKeys) {
    auto ini = parse_ini("# comment\n"
                         "[default]\n"
                         "aws_access_key_id = AKIDDEFAULT\n"
                         "region=eu-west-1 # inline\n"
                         "; another comment\n"
                         "[profile dev]\n"
                         "  region = us-west-2  \n"
                         "s3 =\n"
                         "    addressing_style = path\n"
                         "output = json\n"
                         "[broken\n"
                         "ignored = yes\n");
    EXPECT_EQ(ini["default"]["aws_access_key_id"], "AKIDDEFAULT");
    EXPECT_EQ(ini["default"]["region"], "eu-west-1");
    EXPECT_EQ(ini["profile dev"]["region"], "us-west-2");
    EXPECT_EQ(ini["profile dev"]["s3.addressing_style"], "path");
    EXPECT_EQ(ini["profile dev"]["output"], "json");
    EXPECT_EQ(ini["profile dev"]["ignored"], "yes"); // a broken header does not open a section
}

TEST(Ini, ProfileMergesConfigAndCredentialsFiles) {
    FakeWorld w;
    w.vars = {{"HOME", "/home/u"}, {"AWS_PROFILE", "dev"}};
    w.files["/home/u/.aws/config"] = "[profile dev]\nregion = ap-south-1\naws_access_key_id = FROMCONFIG\n";
    w.files["/home/u/.aws/credentials"] =
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = devsecret\n";
    auto env = w.env();
    auto p = load_profile(env, "dev");
    EXPECT_EQ(p["region"], "ap-south-1");
    EXPECT_EQ(p["aws_access_key_id"], "AKIDDEV");
    EXPECT_EQ(resolve_region(env, ""), "ap-south-1");
    EXPECT_EQ(resolve_region(env, "eu-north-1"), "eu-north-1");
    w.vars["AWS_DEFAULT_REGION"] = "ca-central-1";
    EXPECT_EQ(resolve_region(env, ""), "ca-central-1");
    w.vars["AWS_REGION"] = "sa-east-1";
    EXPECT_EQ(resolve_region(env, ""), "sa-east-1");
    auto c = resolve_credentials(env);
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->provider, "profile dev");
    EXPECT_EQ(c->credentials.secret_access_key, "devsecret");
}

TEST(Ini, FileLocationsComeFromTheEnvironment) {
    FakeWorld w;
    w.vars = {
        {"HOME", "/home/u"}, {"AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"}, {"AWS_CONFIG_FILE", "~/cfg"}};
    w.files["/etc/creds"] = "[default]\naws_access_key_id = AKID\naws_secret_access_key = s3cr3tvalue\n";
    w.files["/home/u/cfg"] = "[default]\nregion = eu-central-1\n";
    auto env = w.env();
    EXPECT_EQ(resolve_region(env, ""), "eu-central-1");
    auto c = resolve_credentials(env);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->credentials.access_key_id, "AKID");
    EXPECT_EQ(redact("secret is s3cr3tvalue"), "secret is ***");
}

TEST(CredentialChain, EnvironmentComesFirst) {
    FakeWorld w;
    w.vars = {{"HOME", "/home/u"},
              {"AWS_ACCESS_KEY_ID", "AKIDENV"},
              {"AWS_SECRET_ACCESS_KEY", "envsecret"},
              {"AWS_SESSION_TOKEN", "envtoken"},
              {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"},
              {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"}};
    w.files["/home/u/.aws/credentials"] =
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = x\n";
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->provider, "environment");
    EXPECT_EQ(c->credentials.session_token, "envtoken");
    EXPECT_TRUE(w.requests.empty());
}

TEST(CredentialChain, WebIdentityBeforeProfileAndContainer) {
    FakeWorld w;
    w.vars = {{"HOME", "/home/u"},
              {"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"},
              {"AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/snap"},
              {"AWS_ROLE_SESSION_NAME", "s1"},
              {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:5000/"},
              {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds"}};
    w.files["/var/run/token"] = "eyJhbGciOi.jwt.token\n";
    w.files["/home/u/.aws/credentials"] =
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = x\n";
    w.answers["POST http://127.0.0.1:5000/"] =
        answer(200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                    "<AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>websecret</SecretAccessKey>"
                    "<SessionToken>webtoken</SessionToken><Expiration>2030-01-01T00:00:00.000Z</Expiration>"
                    "</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>");
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->provider, "web identity");
    EXPECT_EQ(c->credentials.access_key_id, "ASIAWEB");
    EXPECT_EQ(c->credentials.session_token, "webtoken");
    ASSERT_TRUE(c->credentials.expiration);
    EXPECT_EQ(format_rfc3339(*c->credentials.expiration), "2030-01-01T00:00:00Z");
    ASSERT_EQ(w.requests.size(), 1u);
    const std::string& body = w.bodies[0];
    EXPECT_NE(body.find("Action=AssumeRoleWithWebIdentity"), std::string::npos);
    EXPECT_NE(body.find("RoleSessionName=s1"), std::string::npos);
    EXPECT_NE(body.find("&WebIdentityToken=eyJhbGciOi.jwt.token"), std::string::npos);
}

TEST(CredentialChain, ProfileBeforeContainer) {
    FakeWorld w;
    w.vars = {{"HOME", "/home/u"}, {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}};
    w.files["/home/u/.aws/credentials"] =
        "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = x\n";
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->provider, "profile default");
}

TEST(CredentialChain, ContainerRelativeUriUsesTheEcsAddress) {
    FakeWorld w;
    w.vars = {{"HOME", "/home/u"}, {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}};
    w.answers["GET http://169.254.170.2/v2/credentials/x"] =
        answer(200, R"({"AccessKeyId":"ASIAECS","SecretAccessKey":"ecssecret","Token":"ecstoken",)"
                    R"("Expiration":"2030-01-01T00:00:00Z"})");
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->provider, "container");
    EXPECT_EQ(c->credentials.session_token, "ecstoken");
}

TEST(CredentialChain, ContainerFullUriSendsTheTokenFromItsFile) {
    FakeWorld w;
    w.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "envauthtoken"},
              {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/run/auth"}};
    w.files["/run/auth"] = "fileauthtoken\n";
    w.answers["GET http://127.0.0.1:8080/creds"] =
        answer(200, R"({"AccessKeyId":"ASIAECS","SecretAccessKey":"ecssecret","Token":"t"})");
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c) << c.error().message;
    ASSERT_FALSE(w.requests.empty());
    EXPECT_EQ(find_header(w.requests[0], "Authorization"), "fileauthtoken");
}

TEST(CredentialChain, ContainerFullUriMustBeLoopbackOrHttps) {
    FakeWorld w;
    w.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example.com/creds"}};
    auto c = resolve_credentials(w.env());
    ASSERT_FALSE(c);
    EXPECT_TRUE(w.requests.empty());
}

TEST(CredentialChain, ImdsV2TokenThenRoleThenCredentials) {
    FakeWorld w;
    w.vars = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:7000/"}};
    w.answers["PUT http://127.0.0.1:7000/latest/api/token"] = answer(200, "imdstoken");
    w.answers["GET http://127.0.0.1:7000/latest/meta-data/iam/security-credentials/"] =
        answer(200, "snaprole\n");
    w.answers["GET http://127.0.0.1:7000/latest/meta-data/iam/security-credentials/snaprole"] =
        answer(200, R"({"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imdssecret",)"
                    R"("Token":"imdstok","Expiration":"2030-01-01T00:00:00Z"})");
    auto c = resolve_credentials(w.env());
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->provider, "instance metadata");
    ASSERT_EQ(w.requests.size(), 3u);
    EXPECT_EQ(find_header(w.requests[0], "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
    EXPECT_EQ(find_header(w.requests[2], "X-aws-ec2-metadata-token"), "imdstoken");
}

TEST(CredentialChain, ImdsCanBeDisabledAndNothingIsAnError) {
    FakeWorld w;
    w.vars = {{"AWS_EC2_METADATA_DISABLED", "TRUE"}};
    auto c = resolve_credentials(w.env());
    ASSERT_FALSE(c);
    EXPECT_TRUE(w.requests.empty());
    w.vars.clear(); // enabled, but nothing answers
    EXPECT_FALSE(resolve_credentials(w.env()));
    EXPECT_EQ(w.requests.size(), 1u);
}

TEST(CredentialCache, RefreshesBeforeExpiryAndKeepsValidOnesOnFailure) {
    FakeWorld w;
    w.vars = {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}};
    w.now = *parse_rfc3339("2030-01-01T00:00:00Z");
    w.answers["GET http://127.0.0.1:8080/creds"] =
        answer(200, R"({"AccessKeyId":"ASIA1","SecretAccessKey":"secret1","Token":"t1",)"
                    R"("Expiration":"2030-01-01T01:00:00Z"})");
    CredentialCache cache(w.env());
    ASSERT_EQ(cache.get()->access_key_id, "ASIA1");
    w.answers["GET http://127.0.0.1:8080/creds"] =
        answer(200, R"({"AccessKeyId":"ASIA2","SecretAccessKey":"secret2","Token":"t2",)"
                    R"("Expiration":"2030-01-01T02:00:00Z"})");
    w.now = *parse_rfc3339("2030-01-01T00:30:00Z");
    EXPECT_EQ(cache.get()->access_key_id, "ASIA1"); // far from expiry: cached
    w.now = *parse_rfc3339("2030-01-01T00:56:00Z");
    EXPECT_EQ(cache.get()->access_key_id, "ASIA2"); // within 5 minutes: refreshed
    w.answers.clear();
    w.now = *parse_rfc3339("2030-01-01T01:57:00Z");
    EXPECT_EQ(cache.get()->access_key_id, "ASIA2"); // refresh failed, still valid
    w.now = *parse_rfc3339("2030-01-01T02:00:01Z");
    EXPECT_FALSE(cache.get()); // expired and no refresh
}

TEST(AwsTime, ParsesTheFormsAwsWrites) {
    EXPECT_TRUE(parse_aws_time("2030-01-01T00:00:00Z"));
    EXPECT_TRUE(parse_aws_time("2030-01-01T00:00:00.123Z"));
    EXPECT_TRUE(parse_aws_time("2030-01-01T00:00:00+00:00"));
    EXPECT_FALSE(parse_aws_time("2030-01-01T00:00:00+02:00"));
    EXPECT_FALSE(parse_aws_time("soon"));
}
