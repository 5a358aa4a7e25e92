// Hostile input that the code already defends against (issue 6, item 8):
// repository names as storage keys, storage key validation, the payload size
// limit, the transport allow-list and option injection, oversize pkt-lines.
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/url.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace snapshotter;
using nlohmann::json;

namespace {

// Names an attacker-controlled payload or server might produce.
const std::vector<std::string> k_hostile_names = {
    "..",
    ".",
    "../..",
    "a/../b",
    "/abs",
    "a//b",
    "a/",
    "-rf",
    "a\nb",
    "a\rb",
    std::string("a\0b", 3),
    "a\x1b[31mb",
    "a b",
    "a%2Fb",
    "a/b",
    "a%b",
    "%",
    "%2",
    "%zz",
    "caf\xc3\xa9",
    "\xff\xfe",
    "a\\b",
    "C:\\x",
    "~",
    "$HOME",
    "a;b",
    "a|b",
    "`id`",
    std::string(300, 'x'),
};

bool has_control_char(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f)
            return true;
    return false;
}

// Every key the layout produces for `name` is one valid storage key whose repository segment is
// a single safe path segment.
void expect_safe_keys(const std::string& name) {
    const auto key = snapshot::layout::repo_key(name);
    EXPECT_EQ(key.find('/'), std::string::npos) << name;
    EXPECT_FALSE(has_control_char(key)) << name;
    EXPECT_EQ(key.find('\\'), std::string::npos) << name;
    if (!name.empty() && name != "." && name != "..") {
        EXPECT_NE(key, "..");
        EXPECT_NE(key, ".");
        for (const auto& full : {snapshot::layout::latest_key(name),
                                 snapshot::layout::manifest_key(name, "20261128T073545.123Z-9f3a1c"),
                                 snapshot::layout::bundle_key(name, "20261128T073545.123Z-9f3a1c")})
            EXPECT_TRUE(storage::is_valid_key(full)) << full;
    }
}

json base_payload() {
    return json::parse(R"({"version": 1, "action": "snapshot", "storage": {"url": "memory://hostile"},
                           "repositories": [{"url": "https://git.example.com/org/app.git", "name": "org/app"}]})");
}

Result<job::Job> parse(const json& payload) {
    return job::parse_job(payload.dump(), [](const std::string&) { return std::nullopt; });
}

Result<job::Job> parse_with_url(const std::string& url, std::optional<bool> allow_file = std::nullopt) {
    auto payload = base_payload();
    payload["repositories"][0]["url"] = url;
    if (allow_file)
        payload["options"]["allow_file"] = *allow_file;
    return parse(payload);
}

} // namespace

TEST(HostileNames, RepoKeyRoundTripsSoDistinctNamesNeverCollide) {
    // repo_name(repo_key(x)) == x for every byte string implies repo_key is injective.
    std::set<std::string> keys;
    for (const auto& name : k_hostile_names) {
        const auto key = snapshot::layout::repo_key(name);
        EXPECT_EQ(snapshot::layout::repo_name(key), name) << key;
        EXPECT_TRUE(keys.insert(key).second) << "collision on " << key;
    }
    std::mt19937 rng(6);
    for (int i = 0; i < 20000; ++i) {
        std::string name(rng() % 12, '\0');
        for (auto& c : name)
            c = static_cast<char>(rng() % 4 == 0 ? "%/._-aA0"[rng() % 8] : rng());
        EXPECT_EQ(snapshot::layout::repo_name(snapshot::layout::repo_key(name)), name);
    }
    // The encoding that would make "a/b" and "a%2Fb" collide is exactly what it prevents.
    EXPECT_NE(snapshot::layout::repo_key("a/b"), snapshot::layout::repo_key("a%2Fb"));
}

TEST(HostileNames, KeysHaveNoSlashControlCharsOrTraversal) {
    for (const auto& name : k_hostile_names)
        expect_safe_keys(name);
}

TEST(HostileNames, PayloadRefusesNamesThatCouldNotBeKeptApart) {
    for (const std::string& name : std::vector<std::string>{"..", ".", "a/../b", "/abs", "a//b", "a/", "a\nb",
                                                            "a b", "a%2Fb", "", std::string(201, 'x')}) {
        auto payload = base_payload();
        payload["repositories"][0]["name"] = name;
        EXPECT_FALSE(parse(payload)) << name;
        EXPECT_FALSE(job::is_valid_repository_name(name)) << name;
    }
    EXPECT_TRUE(job::is_valid_repository_name("org/app-1.2_x"));
}

TEST(HostileKeys, StorageKeyValidationRefusesTraversal) {
    for (const std::string& key :
         std::vector<std::string>{"", "/etc/passwd", "..", ".", "../x", "a/../../x", "a/./b", "a//b", "a/",
                                  "a/..", "a\nb", std::string("a\0b", 3), "a\x7f", "a\tb"})
        EXPECT_FALSE(storage::is_valid_key(key)) << key;
    EXPECT_TRUE(storage::is_valid_key("repos/org%2Fapp/latest.json"));
    EXPECT_TRUE(storage::is_valid_key("repos/..x/a..b"));
}

TEST(HostilePayload, SizeLimitIsEnforcedBeforeParsing) {
    // Valid JSON padded with whitespace just past the limit: refused for its size alone.
    auto text = base_payload().dump();
    text.append(job::defaults::k_max_payload_bytes + 1 - text.size(), ' ');
    auto job = job::parse_job(text, [](const std::string&) { return std::nullopt; });
    ASSERT_FALSE(job);
    EXPECT_EQ(job.error().kind, ErrorKind::Payload);
    EXPECT_NE(job.error().message.find("larger than"), std::string::npos) << job.error().message;
    text.resize(job::defaults::k_max_payload_bytes);
    EXPECT_TRUE(job::parse_job(text, [](const std::string&) { return std::nullopt; }));
}

TEST(HostileUrls, TransportsOutsideTheAllowListAreRefused) {
    const TransportPolicy strict{.allow_http = false, .allow_file = false};
    for (const std::string url :
         {"ext::sh -c touch% /tmp/pwned", "ext::ssh -oProxyCommand=x host", "fd::3", "fd::0,1/path",
          "EXT::sh", "file:///etc", "/srv/git/app.git", "http://h/r.git", "ftp://h/r.git", "rsync://h/r.git",
          "foo::bar", "transport::https://h/r"})
        EXPECT_FALSE(parse_git_url(url, strict)) << url;
    EXPECT_TRUE(parse_git_url("https://h/r.git", strict));
    EXPECT_TRUE(parse_git_url("ssh://git@h/r.git", strict));
    EXPECT_TRUE(parse_git_url("git://h/r.git", strict));
    EXPECT_TRUE(parse_git_url("file:///srv/r.git", {.allow_file = true}));
    EXPECT_FALSE(parse_git_url("ext::sh", {.allow_http = true, .allow_file = true}));
    EXPECT_FALSE(parse_git_url("fd::3", {.allow_http = true, .allow_file = true}));
}

TEST(HostileUrls, OptionInjectionThroughALeadingDashIsRefused) {
    const TransportPolicy all{.allow_http = true, .allow_file = true};
    for (const std::string url :
         {"-oProxyCommand=touch /tmp/pwned", "--upload-pack=touch /tmp/pwned", "ssh://-oProxyCommand=x/r.git",
          "-u@host:r.git", "git@-oProxyCommand=x:r.git"})
        EXPECT_FALSE(parse_git_url(url, all)) << url;
    // A path that merely contains '-' after its leading '/' is no option.
    EXPECT_TRUE(parse_git_url("ssh://git@host/-r.git", all));
}

TEST(HostileUrls, PayloadAppliesTheAllowList) {
    EXPECT_FALSE(parse_with_url("ext::sh -c id"));
    EXPECT_FALSE(parse_with_url("fd::3"));
    EXPECT_FALSE(parse_with_url("-oProxyCommand=id"));
    EXPECT_FALSE(parse_with_url("file:///srv/git/app.git", false));
    EXPECT_FALSE(parse_with_url("/srv/git/app.git", false));
    EXPECT_TRUE(parse_with_url("file:///srv/git/app.git", true));
}

TEST(HostilePktLine, OversizeAndMalformedLengthsAreRefusedWithoutBuffering) {
    for (const std::string prefix :
         {"fff1", "ffff", "FFFF", "0003", "0002x", "00-1", " 0a0", "zzzz", "+004"}) {
        git::PktLineDecoder decoder;
        decoder.feed(prefix);
        auto packet = decoder.next();
        if (prefix == "0002x") {
            // 0002 is response-end; what follows is then a malformed length.
            ASSERT_TRUE(packet);
            packet = decoder.next();
            EXPECT_TRUE(packet && !*packet); // waits for 4 bytes
            continue;
        }
        EXPECT_FALSE(packet) << prefix;
        if (!packet) {
            EXPECT_EQ(packet.error().kind, ErrorKind::Git);
        }
    }
    // A length that claims the maximum waits for the bytes instead of reading past the buffer.
    git::PktLineDecoder decoder;
    decoder.feed(std::string("fff0") + std::string(100, 'x'));
    auto packet = decoder.next();
    ASSERT_TRUE(packet);
    EXPECT_FALSE(*packet);
}
