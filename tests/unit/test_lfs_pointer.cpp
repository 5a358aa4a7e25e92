// Git LFS pointers (git-lfs docs/spec.md): the valid ones, and the many ways a
// blob can look like one without being one.
#include "snapshotter/lfs/pointer.hpp"

#include <gtest/gtest.h>

using namespace snapshotter::lfs;

namespace {

const std::string k_oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

std::string pointer_text(std::string_view oid_line, std::string_view size_line) {
    return "version https://git-lfs.github.com/spec/v1\n" + std::string(oid_line) + "\n" + std::string(size_line) +
           "\n";
}

} // namespace

TEST(LfsPointer, TheSpecExampleParses) {
    auto p = parse_pointer(pointer_text("oid sha256:" + k_oid, "size 12345"));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->oid, k_oid);
    EXPECT_EQ(p->size, 12345u);
    EXPECT_EQ(format_pointer(*p), pointer_text("oid sha256:" + k_oid, "size 12345"));
}

TEST(LfsPointer, ThePreReleaseVersionAndExtensionsParse) {
    EXPECT_TRUE(parse_pointer("version https://hawser.github.com/spec/v1\noid sha256:" + k_oid + "\nsize 0\n"));
    EXPECT_TRUE(parse_pointer("version https://git-lfs.github.com/spec/v1\next-0-foo sha256:" + k_oid +
                              "\noid sha256:" + k_oid + "\nsize 7\n"));
}

TEST(LfsPointer, HostileOrNearMissBlobsAreNotPointers) {
    const std::string good_oid = "oid sha256:" + k_oid;
    for (const std::string& blob : {
             std::string(),
             pointer_text(good_oid, "size 12345").substr(1),                    // truncated version
             pointer_text(good_oid, "size 12345").substr(0, 130),               // no final newline
             pointer_text("oid sha256:" + k_oid.substr(1), "size 1"),           // 63 hex
             pointer_text("oid sha256:" + k_oid + "0", "size 1"),               // 65 hex
             pointer_text("oid sha256:4D7A" + k_oid.substr(4), "size 1"),       // uppercase hex
             pointer_text("oid sha512:" + k_oid, "size 1"),                     // another hash
             pointer_text(good_oid, "size -1"),                                 // negative
             pointer_text(good_oid, "size 01"),                                 // leading zero
             pointer_text(good_oid, "size 1e3"),                                // not decimal
             pointer_text(good_oid, "size 99999999999999999999999"),            // overflow
             pointer_text(good_oid, "size 17592186044417"),                     // past 16 TiB
             pointer_text(good_oid, "size  1"),                                 // two spaces
             pointer_text(good_oid, "size 1\r"),                                // CR
             "size 1\n" + pointer_text(good_oid, "size 1"),                     // version not first
             "version https://git-lfs.github.com/spec/v1\nsize 1\n" + good_oid + "\n", // unsorted
             pointer_text(good_oid, "size 1\nsize 2"),                          // duplicate key
             pointer_text(good_oid, "size 1\nzzz x"),                           // unknown key
             pointer_text(good_oid, "Size 1"),                                  // key case
             "version https://git-lfs.github.com/spec/v2\n" + good_oid + "\nsize 1\n", // unknown version
             "version https://git-lfs.github.com/spec/v1\n" + good_oid + "\n",  // no size
             pointer_text(good_oid, "size 1") + std::string(1000, 'x') + "\n",  // too long
         })
        EXPECT_FALSE(parse_pointer(blob)) << blob;
}
