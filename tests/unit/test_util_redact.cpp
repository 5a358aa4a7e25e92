#include "snapshotter/util/redact.hpp"

#include <gtest/gtest.h>
#include <random>
#include <regex>
#include <string>
#include <vector>

using namespace snapshotter;

namespace {

// A secret no other test registers, so tests stay independent of the
// process-wide registry.
std::string unique_secret(std::string_view label) {
    return "s3cr3t-" + std::string(label) + "-b7f1e2";
}

} // namespace

TEST(RedactUrl, ReplacesUserinfoPassword) {
    EXPECT_EQ(redact_url("https://alice:hunter22@git.example.com/org/app.git"),
              "https://alice:***@git.example.com/org/app.git");
}

TEST(RedactUrl, PasswordContainingAtSignIsRedactedWhole) {
    EXPECT_EQ(redact_url("https://user:p@ss@host/x.git"), "https://user:***@host/x.git");
    EXPECT_EQ(redact_url("https://user:p@ss@w@host:8443/x.git https://v:q@g/y"),
              "https://user:***@host:8443/x.git https://v:***@g/y");
    // An '@' after the authority is not part of the password.
    EXPECT_EQ(redact_url("https://host/a@b/c"), "https://host/a@b/c");
    EXPECT_EQ(redact_url("https://host:8443/a@b"), "https://host:8443/a@b");
}

TEST(RedactUrl, KeepsUserWithoutPassword) {
    EXPECT_EQ(redact_url("ssh://git@git.example.com/org/app.git"), "ssh://git@git.example.com/org/app.git");
    EXPECT_EQ(redact_url("https://git.example.com/org/app.git"), "https://git.example.com/org/app.git");
}

TEST(RedactUrl, ReplacesTokenQueryValues) {
    EXPECT_EQ(redact_url("https://h/x?token=abc123&page=2"), "https://h/x?token=***&page=2");
    EXPECT_EQ(redact_url("https://h/x?page=2&access_token=zzz"), "https://h/x?page=2&access_token=***");
    EXPECT_EQ(redact_url("https://h/x?private_token=p1&password=p2"),
              "https://h/x?private_token=***&password=***");
}

TEST(RedactUrl, QueryNamesAreCaseInsensitive) {
    EXPECT_EQ(redact_url("https://h/x?TOKEN=abc"), "https://h/x?TOKEN=***");
}

TEST(RedactUrl, ReplacesAwsPresignedCredentials) {
    std::string url = "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                      "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                      "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
                      "&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE";
    std::string out = redact_url(url);
    EXPECT_EQ(out.find("aeeed9bbccd4d02ee5c0109b86d86835"), std::string::npos) << out;
    EXPECT_EQ(out.find("AKIAIOSFODNN7EXAMPLE"), std::string::npos) << out;
    EXPECT_EQ(out.find("FQoGZXIvYXdzEXAMPLE"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Amz-Signature=***"), std::string::npos) << out;
    // Harmless parameters stay readable.
    EXPECT_NE(out.find("X-Amz-Date=20130524T000000Z"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Amz-Expires=86400"), std::string::npos) << out;
}

TEST(RedactUrl, DoesNotTouchSimilarNames) {
    EXPECT_EQ(redact_url("https://h/x?tokens_left=5"), "https://h/x?tokens_left=5");
    EXPECT_EQ(redact_url("https://h/path/token=abc"), "https://h/path/token=abc");
}

TEST(Redact, RedactsUrlsInsideText) {
    EXPECT_EQ(redact("fetch https://bob:pw1234@h.example/r.git failed: exit 128"),
              "fetch https://bob:***@h.example/r.git failed: exit 128");
    EXPECT_EQ(redact("GET https://h/x?token=abc&a=1 -> 401"), "GET https://h/x?token=***&a=1 -> 401");
}

TEST(Redact, RegisteredSecretIsReplacedEverywhere) {
    const std::string secret = unique_secret("everywhere");
    register_secret(secret);
    std::string text =
        secret + " at start, in the middle " + secret + secret + " and in a word x" + secret + "y";
    std::string out = redact(text);
    EXPECT_EQ(out.find(secret), std::string::npos) << out;
    EXPECT_EQ(out, "*** at start, in the middle ****** and in a word x***y");
}

TEST(Redact, RegisteredSecretContainingAnotherIsReplacedWhole) {
    const std::string inner = unique_secret("inner");
    const std::string outer = "prefix-" + inner + "-suffix";
    register_secret(inner);
    register_secret(outer);
    EXPECT_EQ(redact("a " + outer + " b " + inner), "a *** b ***");
}

TEST(Redact, RegisteringTwiceIsHarmless) {
    const std::string secret = unique_secret("twice");
    register_secret(secret);
    register_secret(secret);
    EXPECT_EQ(redact("[" + secret + "]"), "[***]");
}

TEST(Redact, ShortSecretsAreIgnored) {
    register_secret("");
    register_secret("a");
    register_secret("ab");
    register_secret("abc");
    EXPECT_EQ(redact("a cab abc ab"), "a cab abc ab");
}

TEST(Redact, FourByteSecretIsRedacted) {
    register_secret("Q7z!");
    EXPECT_EQ(redact("x Q7z! y"), "x *** y");
}

TEST(Redact, SecretsInUrlsAndRegisteredTogether) {
    const std::string secret = unique_secret("combined");
    register_secret(secret);
    std::string out = redact("https://u:" + secret + "@h/r.git?token=" + secret);
    EXPECT_EQ(out.find(secret), std::string::npos) << out;
    EXPECT_EQ(out, "https://u:***@h/r.git?token=***");
}

TEST(Redact, TextWithoutSecretsIsUnchanged) {
    const std::string text = "nothing to hide: refs/heads/main 0123456789abcdef";
    EXPECT_EQ(redact(text), text);
}

namespace {

// The regular expressions redact_url() implemented before it became a linear
// scan; the oracle for the differential test below (short inputs only:
// libstdc++'s std::regex recurses once per character).
std::string regex_redact_url(const std::string& url) {
    static const std::regex userinfo(R"(([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):([^/\s]*)@)");
    static const std::regex query_secret(
        R"(([?&;](?:access_token|private_token|token|password|passwd|secret|sig|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&\s"']*)",
        std::regex::icase);
    std::string out = std::regex_replace(url, userinfo, "$1$2:***@");
    return std::regex_replace(out, query_secret, "$1***");
}

} // namespace

TEST(RedactUrl, MatchesTheRegularExpressionsOnRandomText) {
    // Fragments that make URLs, userinfo and query parameters likely.
    const std::vector<std::string> pieces = {"https",  "://",
                                             "s3",     "x+y.z-1",
                                             "1a",     ":",
                                             "@",      "/",
                                             " ",      "\t",
                                             "?",      "&",
                                             ";",      "=",
                                             "u",      "pw",
                                             "token",  "TOKEN",
                                             "sig",    "signature",
                                             "passwd", "x-amz-signature",
                                             "\"",     "'",
                                             "a",      "tokens"};
    std::mt19937 rng(20261128);
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        const int n = static_cast<int>(rng() % 12);
        for (int i = 0; i < n; ++i)
            text += pieces[rng() % pieces.size()];
        ASSERT_EQ(redact_url(text), regex_redact_url(text)) << "input: " << text;
    }
}

TEST(Redact, HostileLengthsAreLinear) {
    // A server may answer with megabytes of text that ends up in an error
    // message; std::regex overflowed the stack on 65,000 letters.
    const std::string letters(1 << 20, 'a');
    EXPECT_EQ(redact(letters), letters);
    std::string schemes;
    for (int i = 0; i < 100000; ++i)
        schemes += "a://b:";
    EXPECT_EQ(redact(schemes), schemes);
    std::string many = "x";
    for (int i = 0; i < 50000; ++i)
        many += "&token=v";
    std::string expected = "x";
    for (int i = 0; i < 50000; ++i)
        expected += "&token=***";
    EXPECT_EQ(redact(many), expected);
    EXPECT_EQ(redact("https://u:" + std::string(100000, '@') + "@h/r"), "https://u:***@h/r");
    const std::string secret = unique_secret("repeated");
    register_secret(secret);
    std::string echoed, echoed_redacted;
    for (int i = 0; i < 100000; ++i) {
        echoed += secret + " ";
        echoed_redacted += "*** ";
    }
    EXPECT_EQ(redact(echoed), echoed_redacted);
}
