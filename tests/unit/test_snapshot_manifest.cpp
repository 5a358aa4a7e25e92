// parse_manifest on text that is not a manifest: every failure is an
// IntegrityError value, never an exception.
#include "sample_manifest.hpp"
#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/util/json.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace snapshotter;
using namespace snapshotter::snapshot;

TEST(ParseManifest, MalformedTextIsAnIntegrityError) {
    for (const char* text : {"", "{", "[]", "{\"schema_version\": 1e999999}",
                             "{\"schema_version\": 19999999038E3139815726120960}"}) {
        auto parsed = parse_manifest(text);
        ASSERT_FALSE(parsed) << text;
        EXPECT_EQ(parsed.error().kind, ErrorKind::Integrity) << text;
    }
}

namespace {

// A valid manifest of one full bundle of 1234 bytes, as JSON to edit.
nlohmann::json valid_manifest() {
    const std::string id = "20261128T073545.123Z-9f3a1c";
    auto text = serialize_manifest(test::sample_manifest("org/app", id, {id}, 1234));
    EXPECT_TRUE(text);
    return nlohmann::json::parse(text.value_or("{}"));
}

} // namespace

TEST(ParseManifest, TheValidManifestParses) {
    auto parsed = parse_manifest(valid_manifest().dump());
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->bundles.at(0).size, 1234u);
}

TEST(ParseManifest, NumbersThatAreNotIntegersInRangeAreIntegrityErrors) {
    // Found by libFuzzer (fuzz/corpus/fuzz_manifest/float-schema-version.json):
    // get<int>() of 5.5e57 was a float-to-int overflow, undefined behaviour.
    for (const auto& bad : {nlohmann::json(5.5e57), nlohmann::json(1.0), nlohmann::json(-1e30),
                            nlohmann::json("1"), nlohmann::json(4294967297LL), nlohmann::json(nullptr)}) {
        auto m = valid_manifest();
        m["schema_version"] = bad;
        auto parsed = parse_manifest(m.dump());
        ASSERT_FALSE(parsed) << bad.dump();
        EXPECT_EQ(parsed.error().kind, ErrorKind::Integrity) << bad.dump();
        EXPECT_NE(parsed.error().message.find("schema_version"), std::string::npos) << parsed.error().message;
    }
    for (const auto& bad :
         {nlohmann::json(-1), nlohmann::json(1e30), nlohmann::json(2.5), nlohmann::json("9")}) {
        auto m = valid_manifest();
        ASSERT_FALSE(m["bundles"].empty());
        m["bundles"][0]["size"] = bad;
        auto parsed = parse_manifest(m.dump());
        ASSERT_FALSE(parsed) << bad.dump();
        EXPECT_EQ(parsed.error().kind, ErrorKind::Integrity) << bad.dump();
        EXPECT_NE(parsed.error().message.find("size"), std::string::npos) << parsed.error().message;
    }
}

TEST(JsonInteger, RangeAndType) {
    using nlohmann::json;
    EXPECT_EQ(json_integer<int>(json(7)), 7);
    EXPECT_EQ(json_integer<int>(json(-7)), -7);
    EXPECT_EQ(json_integer<std::uint64_t>(json(18446744073709551615ULL)), 18446744073709551615ULL);
    EXPECT_EQ(json_integer<std::uint64_t>(json(-1)), std::nullopt);
    EXPECT_EQ(json_integer<int>(json(2147483648LL)), std::nullopt);
    EXPECT_EQ(json_integer<long long>(json(18446744073709551615ULL)), std::nullopt);
    EXPECT_EQ(json_integer<int>(json(1.0)), std::nullopt);
    EXPECT_EQ(json_integer<int>(json(5.5e57)), std::nullopt);
    EXPECT_EQ(json_integer<int>(json("3")), std::nullopt);
}

TEST(ParseManifest, AShallowBoundaryRoundTripsAndOnlyShallowManifestsCarryIt) {
    EXPECT_FALSE(valid_manifest().contains("shallow")); // a complete history writes no field
    const std::string id = "20261128T073545.123Z-9f3a1c";
    auto m = test::sample_manifest("org/app", id, {id}, 1234);
    m.shallow = {std::string(40, 'b'), std::string(40, 'c')};
    auto text = serialize_manifest(m);
    ASSERT_TRUE(text);
    auto parsed = parse_manifest(*text);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->shallow, m.shallow);
    auto j = nlohmann::json::parse(*text);
    j["shallow"] = {"not-an-oid"};
    auto bad = parse_manifest(j.dump());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().kind, ErrorKind::Integrity);
    EXPECT_NE(bad.error().message.find("shallow"), std::string::npos);
}

TEST(ParseManifest, AWalkAnchorRoundTripsAndAMalformedOneIsRefused) {
    EXPECT_FALSE(valid_manifest().contains("walk_anchor")); // none known: no field
    const std::string id = "20261128T073545.123Z-9f3a1c";
    auto m = test::sample_manifest("org/app", id, {id}, 1234);
    m.walk_anchor = git::WalkAnchor{std::string(40, 'a'), {std::string(40, 'b'), std::string(40, 'c')}};
    auto text = serialize_manifest(m);
    ASSERT_TRUE(text);
    auto parsed = parse_manifest(*text);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->walk_anchor, m.walk_anchor);
    // Read from storage and sent to a server: anything but well-formed commit ids is refused.
    std::vector<std::string> nine_parents;
    for (char c = '1'; c <= '9'; ++c)
        nine_parents.emplace_back(40, c);
    for (const auto& bad :
         {nlohmann::json{{"commit", "not-an-oid"}, {"parents", nlohmann::json::array()}},
          nlohmann::json{{"commit", std::string(64, 'a')}, {"parents", nlohmann::json::array()}},
          nlohmann::json{{"commit", std::string(40, 'a')}, {"parents", {"x"}}},
          nlohmann::json{{"commit", std::string(40, 'a')}, {"parents", {std::string(40, 'a')}}},
          nlohmann::json{{"commit", std::string(40, 'a')}, {"parents", nine_parents}},
          nlohmann::json{{"commit", std::string(40, 'a')}},
          nlohmann::json{{"commit", 7}, {"parents", nlohmann::json::array()}}}) {
        auto j = nlohmann::json::parse(*text);
        j["walk_anchor"] = bad;
        auto refused = parse_manifest(j.dump());
        ASSERT_FALSE(refused) << bad.dump();
        EXPECT_EQ(refused.error().kind, ErrorKind::Integrity) << bad.dump();
    }
}
