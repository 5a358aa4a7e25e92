#include "snapshotter/util/http.hpp"

#include <curl/curl.h>
#include <gtest/gtest.h>

using namespace snapshotter;

TEST(Http, HeaderLookupIsCaseInsensitive) {
    http::Response r;
    r.headers = {{"etag", "\"abc\""}, {"x-amz-request-id", "1"}};
    EXPECT_EQ(r.header("ETag"), "\"abc\"");
    EXPECT_FALSE(r.header("Location"));
}

TEST(Http, ConnectionRefusedIsATransportError) {
    // Port 1 on loopback is closed on these machines: no server is needed.
    http::Client client;
    http::Request req;
    req.url = "http://127.0.0.1:1/";
    req.connect_timeout = std::chrono::seconds{2};
    auto r = client.perform(req);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().transport);
}

TEST(Http, CurlCodesHaveTheirCause) {
    EXPECT_EQ(http::cause_of_curl_code(CURLE_COULDNT_CONNECT), Cause::network);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_COULDNT_RESOLVE_HOST), Cause::network);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_SSL_CONNECT_ERROR), Cause::network);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_RECV_ERROR), Cause::reset);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_PARTIAL_FILE), Cause::reset);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_GOT_NOTHING), Cause::reset);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_OPERATION_TIMEDOUT), Cause::timeout);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_PEER_FAILED_VERIFICATION), Cause::unspecified);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_WRITE_ERROR), Cause::unspecified);
    EXPECT_EQ(http::cause_of_curl_code(CURLE_OK), Cause::unspecified);
}
