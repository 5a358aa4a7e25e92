#include "snapshotter/util/error.hpp"

#include <cerrno>
#include <gtest/gtest.h>

using namespace snapshotter;

TEST(Error, KindNamesAreStable) {
    EXPECT_EQ(error_kind_name(ErrorKind::Payload), "PayloadError");
    EXPECT_EQ(error_kind_name(ErrorKind::Git), "GitError");
    EXPECT_EQ(error_kind_name(ErrorKind::Storage), "StorageError");
    EXPECT_EQ(error_kind_name(ErrorKind::Integrity), "IntegrityError");
}

TEST(Error, WithContextPrefixesMessage) {
    auto e = Error::git("exit 128").with_context("fetch org/app");
    EXPECT_EQ(e.kind, ErrorKind::Git);
    EXPECT_EQ(e.message, "fetch org/app: exit 128");
}

TEST(Error, WithContextKeepsTheCause) {
    auto e = Error::git("Connection refused", Cause::network).with_context("ls-refs");
    EXPECT_EQ(e.cause, Cause::network);
    EXPECT_TRUE(e.transient());
    EXPECT_EQ(e.message, "ls-refs: Connection refused");
}

TEST(Error, OnlyNetworkCausesAreTransient) {
    for (auto c : {Cause::network, Cause::reset, Cause::timeout, Cause::http_5xx, Cause::http_429})
        EXPECT_TRUE(is_transient(c)) << cause_name(c);
    for (auto c : {Cause::unspecified, Cause::refused, Cause::not_v2, Cause::protocol})
        EXPECT_FALSE(is_transient(c)) << cause_name(c);
    EXPECT_FALSE(Error::git("x").transient());
    EXPECT_EQ(Error::internal("x").cause, Cause::unspecified);
}

TEST(Error, CauseNamesAreStable) {
    EXPECT_EQ(cause_name(Cause::http_5xx), "http_5xx");
    EXPECT_EQ(cause_name(Cause::http_429), "http_429");
    EXPECT_EQ(cause_name(Cause::not_v2), "not_v2");
    EXPECT_EQ(cause_name(Cause::unspecified), "unspecified");
}

TEST(Error, StrongestCause) {
    // A refusal wins, then a transient cause, then a protocol one.
    EXPECT_EQ(strongest(Cause::reset, Cause::refused), Cause::refused);
    EXPECT_EQ(strongest(Cause::refused, Cause::reset), Cause::refused);
    EXPECT_EQ(strongest(Cause::protocol, Cause::reset), Cause::reset);
    EXPECT_EQ(strongest(Cause::unspecified, Cause::protocol), Cause::protocol);
    EXPECT_EQ(strongest(Cause::reset, Cause::network), Cause::reset); // the first of equals
    EXPECT_EQ(strongest(Cause::unspecified, Cause::unspecified), Cause::unspecified);
}

TEST(Error, CauseOfErrno) {
    EXPECT_EQ(cause_of_errno(ECONNREFUSED), Cause::network);
    EXPECT_EQ(cause_of_errno(ECONNRESET), Cause::reset);
    EXPECT_EQ(cause_of_errno(ETIMEDOUT), Cause::timeout);
    EXPECT_EQ(cause_of_errno(EPIPE), Cause::unspecified);
    EXPECT_EQ(cause_of_errno(ENOENT), Cause::unspecified);
}
