#include "snapshotter/util/hash.hpp"

#include <array>
#include <gtest/gtest.h>

using namespace snapshotter;

// FIPS 180-2 / NIST test vectors.
TEST(Sha256, KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex(std::string(1'000'000, 'a')),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, BinaryInputWithNulBytes) {
    // sha256 of the four bytes 00 01 02 03 (printf '\0\1\2\3' | sha256sum).
    const std::string data("\x00\x01\x02\x03", 4);
    EXPECT_EQ(sha256_hex(data), "054edec1d0211f624fed0cbca9d4f9400b0e491c43742af2c5b0abebf0c990d8");
}

TEST(Sha256, IncrementalEqualsOneShot) {
    const std::string data = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    Sha256 h;
    h.update(std::string_view(data).substr(0, 7));
    h.update(std::string_view{});
    h.update(std::as_bytes(std::span<const char>(data.data() + 7, 20)));
    h.update(std::string_view(data).substr(27));
    EXPECT_EQ(h.hex_digest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MovedHasherKeepsState) {
    Sha256 a;
    a.update("ab");
    Sha256 b(std::move(a));
    b.update("c");
    EXPECT_EQ(b.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ToHex, LowercaseTwoDigitsPerByte) {
    std::array<unsigned char, 5> bytes{0x00, 0x0f, 0xa0, 0xff, 0x7e};
    EXPECT_EQ(to_hex(bytes), "000fa0ff7e");
    EXPECT_EQ(to_hex(std::span<const unsigned char>{}), "");
}

TEST(Base64, EncodesWithPaddingAsBasicAuthNeeds) {
    EXPECT_EQ(snapshotter::base64_encode(""), "");
    EXPECT_EQ(snapshotter::base64_encode("f"), "Zg==");
    EXPECT_EQ(snapshotter::base64_encode("fo"), "Zm8=");
    EXPECT_EQ(snapshotter::base64_encode("foo"), "Zm9v");
    EXPECT_EQ(snapshotter::base64_encode("user:pass"), "dXNlcjpwYXNz");
}
