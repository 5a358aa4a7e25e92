#include "snapshotter/util/http.hpp"

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
