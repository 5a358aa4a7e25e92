#include "snapshotter/util/error.hpp"

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
