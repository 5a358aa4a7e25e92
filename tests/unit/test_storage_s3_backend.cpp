#include "snapshotter/storage/backends.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::storage;

namespace {

// An environment with no variables, files or network: opening must not need any.
AwsEnvironment empty_env(std::map<std::string, std::string> vars = {}) {
    AwsEnvironment env;
    env.getenv = [vars](std::string_view name) -> std::optional<std::string> {
        auto it = vars.find(std::string(name));
        if (it == vars.end())
            return std::nullopt;
        return it->second;
    };
    env.read_file = [](const std::string& path) -> Result<std::string> {
        return fail(Error::not_found(path));
    };
    env.fetch = [](const http::Request&) -> http::HttpResult<http::Response> {
        return std::unexpected(http::HttpError{Error::internal("no network in unit tests"), false});
    };
    env.now = [] { return Clock::now(); };
    return env;
}

Result<std::unique_ptr<Storage>> open_s3(std::string url, S3Settings settings = {},
                                         std::map<std::string, std::string> vars = {}) {
    return open_s3_backend_with(Config{std::move(url), std::move(settings)}, empty_env(std::move(vars)));
}

S3Settings with_endpoint(std::string endpoint) {
    S3Settings settings;
    settings.endpoint = std::move(endpoint);
    return settings;
}

} // namespace

TEST(S3Storage, SchemeIsRegistered) {
    auto schemes = supported_schemes();
    EXPECT_NE(std::find(schemes.begin(), schemes.end(), "s3"), schemes.end());
}

TEST(S3Storage, UrlNormalisesThePrefix) {
    auto s = open_s3("s3://my-bucket//team/snapshots/");
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ((*s)->describe(), "s3://my-bucket/team/snapshots");
    auto bare = open_s3("s3://my-bucket");
    ASSERT_TRUE(bare);
    EXPECT_EQ((*bare)->describe(), "s3://my-bucket");
}

// The settings themselves are validated by the payload parser
// (tests/unit/test_job_job.cpp); the backend checks the URL and an endpoint
// that comes from the environment.
TEST(S3Storage, RejectsBadUrlsAndEndpoints) {
    struct Case {
        std::string url;
        S3Settings settings;
        std::map<std::string, std::string> vars;
        std::string_view expected;
    };
    const Case cases[] = {
        {"s3://", {}, {}, "bucket name"},
        {"s3://Upper_Case/x", {}, {}, "bucket name"},
        {"s3://bucket/a/../b", {}, {}, "invalid prefix"},
        {"s3://bucket", with_endpoint("ftp://host"), {}, "storage.endpoint: must start with http://"},
        {"s3://bucket", with_endpoint("http://host/path"), {}, "must not have a path"},
        {"s3://bucket", with_endpoint("http://user:pw@host"), {}, "user info"},
        {"s3://bucket",
         {},
         {{"AWS_ENDPOINT_URL", "ftp://host"}},
         "AWS_ENDPOINT_URL: must start with http://"},
        {"s3://bucket",
         {},
         {{"AWS_ENDPOINT_URL_S3", "http://host/p"}},
         "AWS_ENDPOINT_URL_S3: \"http://host/p\""},
    };
    for (const auto& c : cases) {
        auto s = open_s3(c.url, c.settings, c.vars);
        ASSERT_FALSE(s) << c.url;
        EXPECT_EQ(s.error().kind, ErrorKind::Payload) << c.url;
        EXPECT_NE(s.error().message.find(c.expected), std::string::npos) << s.error().message;
        EXPECT_EQ(s.error().message.find("pw@"), std::string::npos) << s.error().message;
    }
}

TEST(S3Storage, AcceptsTheDocumentedOptions) {
    S3Settings settings;
    settings.region = "eu-west-1";
    settings.endpoint = "https://minio.example.com:9000/";
    settings.addressing = Addressing::virtual_host;
    settings.sse = Sse::aws_kms;
    settings.kms_key_id = "arn:aws:kms:eu-west-1:1:key/abc";
    settings.bucket_key = true;
    settings.storage_class = "STANDARD_IA";
    settings.stall_timeout = std::chrono::seconds{5};
    settings.retry_budget = std::chrono::seconds{120};
    settings.require_protection = false;
    settings.upload_concurrency = 16;
    auto s = open_s3("s3://bucket.with.dots/p", settings);
    ASSERT_TRUE(s) << s.error().message;
    auto from_env = open_s3("s3://bucket/p", {}, {{"AWS_ENDPOINT_URL", "http://127.0.0.1:9000"}});
    ASSERT_TRUE(from_env) << from_env.error().message;
}

TEST(S3Storage, InvalidKeysAreRefusedBeforeAnyRequest) {
    auto s = open_s3("s3://bucket/p");
    ASSERT_TRUE(s);
    auto w = (*s)->create("../escape", Overwrite::no);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().kind, ErrorKind::Internal);
}

TEST(S3Storage, MissingCredentialsAreAStorageError) {
    auto s = open_s3("s3://bucket/p", with_endpoint("http://127.0.0.1:1"),
                     {{"AWS_EC2_METADATA_DISABLED", "true"}});
    ASSERT_TRUE(s);
    auto r = (*s)->check();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::Storage);
    EXPECT_NE(r.error().message.find("no AWS credentials"), std::string::npos) << r.error().message;
}

TEST(S3Storage, EveryRequestKindMapsToOneOperation) {
    struct Case {
        std::string_view method;
        std::vector<std::string_view> query;
        std::string_view api;
    };
    const Case cases[] = {
        {"PUT", {}, "PutObject"},
        {"PUT", {"partNumber", "uploadId"}, "UploadPart"},
        {"PUT", {"retention"}, "PutObjectRetention"},
        {"POST", {"uploads"}, "CreateMultipartUpload"},
        {"POST", {"uploadId"}, "CompleteMultipartUpload"},
        {"DELETE", {"uploadId"}, "AbortMultipartUpload"},
        {"GET", {"list-type", "max-keys", "prefix"}, "ListObjectsV2"},
        {"GET", {"continuation-token", "list-type", "prefix"}, "ListObjectsV2"},
        {"GET", {}, "GetObject"},
        {"HEAD", {}, "HeadObject"},
        {"POST", {"delete"}, "DeleteObjects"},
    };
    for (const auto& c : cases) {
        const S3Operation* op = s3_operation_of(c.method, c.query);
        ASSERT_NE(op, nullptr) << c.api;
        EXPECT_EQ(op->api, c.api);
        EXPECT_EQ(op->method, c.method);
    }
    // Requests the backend never sends are not in the table, so send() refuses them.
    EXPECT_EQ(s3_operation_of("DELETE", {}), nullptr); // DeleteObject
    EXPECT_EQ(s3_operation_of("PUT", std::vector<std::string_view>{"legal-hold"}),
              nullptr); // PutObjectLegalHold
    EXPECT_EQ(s3_operation_of("GET", std::vector<std::string_view>{"tagging"}), nullptr); // GetObjectTagging
    EXPECT_EQ(s3_operation_of("POST", {}), nullptr);
    for (const auto& op : s3_operations())
        EXPECT_TRUE(op.iam_action.starts_with("s3:")) << op.api;
}
