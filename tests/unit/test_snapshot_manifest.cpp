// parse_manifest on text that is not a manifest: every failure is an
// IntegrityError value, never an exception.
#include "snapshotter/snapshot/manifest.hpp"

#include <gtest/gtest.h>

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
