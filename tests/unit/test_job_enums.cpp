#include "snapshotter/job/enums.hpp"

#include <gtest/gtest.h>

using namespace snapshotter::job;

namespace {

// Every value of `table` reads back from its spelling, and no other text parses.
template <typename E, typename Parse>
void expect_round_trip(std::span<const Spelling<E>> table, Parse parse) {
    for (const auto& [value, text] : table) {
        EXPECT_EQ(to_string(value), text);
        EXPECT_EQ(parse(text), value) << text;
    }
    EXPECT_FALSE(parse(""));
    EXPECT_FALSE(parse("AUTO"));
}

} // namespace

TEST(JobEnums, EachSpellingRoundTrips) {
    expect_round_trip<Engine>(k_engines, parse_engine);
    expect_round_trip<VerifyMode>(k_verify_modes, parse_verify_mode);
    expect_round_trip<HostKeyPolicy>(k_host_key_policies, parse_host_key_policy);
    expect_round_trip<ForgeType>(k_forge_types, parse_forge_type);
    expect_round_trip<SourceScope>(k_source_scopes, parse_source_scope);
    expect_round_trip<Visibility>(k_visibilities, parse_visibility);
    expect_round_trip<CloneTransport>(k_clone_transports, parse_clone_transport);
}

TEST(JobEnums, PayloadSpellingsAreKept) {
    EXPECT_EQ(to_string(Engine::automatic), "auto");
    EXPECT_EQ(to_string(HostKeyPolicy::accept_new), "accept_new");
    EXPECT_EQ(to_string(Visibility::public_only), "public");
    EXPECT_EQ(to_string(Visibility::private_only), "private");
}
