// snapshot/tables.cpp and manifest version 2: a table is written once and
// shared by equal snapshots (an unchanged night writes none), read back only
// when its key, size and SHA-256 hold (a missing or hostile one is an
// IntegrityError naming it), version-1 manifests and mixed chains still read,
// a crash between table and manifest leaves an orphan that gc takes, and
// prune deletes the tables only dropped manifests named.
#include "action_world.hpp"
#include "fault_storage.hpp"
#include "sample_manifest.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/leftovers.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/storage/backends.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::snapshot;
using namespace snapshotter::test;

namespace {

const std::string k_app = "org/tables";
const std::string k_first = "20261101T000000.000Z-aaaaaa";
const std::string k_second = "20261102T000000.000Z-bbbbbb";
const std::string k_third = "20261103T000000.000Z-cccccc";

// A version-2 manifest of k_app with `refs` refs (names and oids from `seed`).
Manifest many_refs(const std::string& id, int refs, char seed = 'a') {
    Manifest m = sample_manifest(k_app, id, {k_first});
    m.schema_version = k_manifest_schema_version;
    for (int i = 0; i < refs; ++i)
        m.refs[fmt::format("refs/heads/branch-{:04}", i)] = {std::string(40, seed), ""};
    m.preserved[k_first + "/refs/heads/gone"] = std::string(40, 'f');
    return m;
}

std::size_t tables_in(storage::Storage& storage) {
    auto listed = storage.list(layout::tables_prefix(k_app));
    EXPECT_TRUE(listed);
    return listed ? listed->size() : 0;
}

} // namespace

TEST(Gzip, RoundTripsAndRefusesWhatIsNotOneBoundedStream) {
    const std::string text(100000, 'x');
    auto gz = gzip_compress(text);
    ASSERT_TRUE(gz);
    EXPECT_LT(gz->size(), 1000u);
    auto again = gzip_compress(text);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *gz) << "equal input, equal bytes (content addressing needs it)";
    auto back = gzip_decompress(*gz, text.size());
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, text);
    // A bomb: more than the bound is refused while inflating.
    auto bomb = gzip_decompress(*gz, text.size() - 1);
    ASSERT_FALSE(bomb);
    EXPECT_EQ(bomb.error().kind, ErrorKind::Integrity);
    for (const std::string& bad :
         {gz->substr(0, gz->size() / 2), *gz + "trailing", std::string("not gzip")}) {
        auto r = gzip_decompress(bad, text.size());
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().kind, ErrorKind::Integrity) << r.error().message;
    }
}

TEST(Tables, AVersion2ManifestRoundTripsThroughItsTable) {
    auto storage = storage::open_memory("tables-roundtrip");
    Manifest m = many_refs(k_first, 270);
    m.shallow = {std::string(40, 'b')};
    auto key = publish_manifest(*storage, m, Overwrite::no);
    ASSERT_TRUE(key) << key.error().message;
    ASSERT_TRUE(m.table);
    EXPECT_EQ(m.table->key, layout::table_key(k_app, m.table->sha256));
    EXPECT_EQ(m.table->count, 271u);
    EXPECT_EQ(tables_in(*storage), 1u);
    auto text = storage->get(*key);
    ASSERT_TRUE(text);
    EXPECT_LT(text->size(), 1024u) << "the manifest of 271 refs stays small: " << *text;
    EXPECT_EQ(text->find("refs/heads/branch-0001"), std::string::npos);
    auto read = read_manifest(*storage, k_app, k_first);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->schema_version, 2);
    EXPECT_EQ(read->refs, m.refs);
    EXPECT_EQ(read->bundles, m.bundles);
    EXPECT_EQ(read->preserved, m.preserved);
    EXPECT_EQ(read->shallow, m.shallow);
}

TEST(Tables, AnUnchangedNightWritesNoTableAndAChangedOneWritesOne) {
    auto memory = storage::open_memory("tables-unchanged");
    FaultStorage storage(*memory);
    Manifest parent = many_refs(k_first, 270);
    ASSERT_TRUE(publish_manifest(storage, parent, Overwrite::no));
    storage.reset();
    // Unchanged: the same sets, the parent's table reused without a request.
    Manifest same = many_refs(k_second, 270);
    same.kind = SnapshotKind::unchanged;
    same.parent = k_first;
    ASSERT_TRUE(publish_manifest(storage, same, Overwrite::no, parent.table));
    EXPECT_EQ(storage.count(Op::put), 1u) << "only the manifest";
    EXPECT_EQ(same.table, parent.table);
    EXPECT_EQ(tables_in(*memory), 1u);
    // Changed: a new table, then the manifest.
    storage.reset();
    Manifest moved = many_refs(k_third, 270, 'c');
    ASSERT_TRUE(publish_manifest(storage, moved, Overwrite::no, same.table));
    EXPECT_EQ(storage.count(Op::put), 2u);
    EXPECT_EQ(tables_in(*memory), 2u);
    for (const auto& id : {k_first, k_second, k_third})
        EXPECT_TRUE(read_manifest(*memory, k_app, id)) << id;
}

TEST(Tables, AMissingOrHostileTableIsAnIntegrityErrorNamingItsKey) {
    auto storage = storage::open_memory("tables-hostile");
    Manifest m = many_refs(k_first, 20);
    ASSERT_TRUE(publish_manifest(*storage, m, Overwrite::no));
    const auto key = m.table->key;
    auto expect_refused = [&](const TableRef& ref, const std::string& what) {
        auto text = get_table(*storage, k_app, ref, Fresh::yes);
        ASSERT_FALSE(text) << what;
        EXPECT_EQ(text.error().kind, ErrorKind::Integrity) << what;
        EXPECT_NE(text.error().message.find(ref.key), std::string::npos)
            << what << ": " << text.error().message;
    };
    auto stored = storage->get(key);
    ASSERT_TRUE(stored);
    // Corrupted, another content under the key, too large, not gzip, missing.
    std::string flipped = *stored;
    flipped[flipped.size() / 2] ^= 0x20;
    auto other = gzip_compress("{\"bundles\":[],\"preserved\":{},\"refs\":{}}");
    ASSERT_TRUE(other);
    for (const std::string& bytes :
         {flipped, *other, *stored + std::string(100000, 'z'), std::string("{}")}) {
        ASSERT_TRUE(storage->put(key, bytes, Overwrite::yes));
        expect_refused(*m.table, "hostile bytes");
    }
    std::vector<std::string> gone{key};
    ASSERT_TRUE(storage->remove(gone));
    expect_refused(*m.table, "missing");
    // Keys the manifest could plant: another repository's, one not naming its digest, a bomb's claim.
    TableRef foreign = *m.table;
    foreign.key = layout::table_key("org/other", foreign.sha256);
    auto outside = get_table(*storage, k_app, foreign);
    ASSERT_FALSE(outside);
    EXPECT_EQ(outside.error().kind, ErrorKind::Integrity);
    TableRef renamed = *m.table;
    renamed.key = layout::table_key(k_app, std::string(64, 'e'));
    expect_refused(renamed, "key not naming its digest");
    TableRef huge = *m.table;
    huge.raw_size = k_max_table_bytes + 1;
    expect_refused(huge, "claims too much");
    // The manifest reader reports it for the snapshot.
    ASSERT_TRUE(storage->put(key, flipped, Overwrite::yes));
    Manifest again = many_refs(k_second, 21);
    ASSERT_TRUE(publish_manifest(*storage, again, Overwrite::no));
    std::vector<std::string> gone_again{again.table->key};
    ASSERT_TRUE(storage->remove(gone_again));
    auto read = read_manifest(*storage, k_app, k_second);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error().kind, ErrorKind::Integrity);
    EXPECT_NE(read.error().message.find(again.table->key), std::string::npos) << read.error().message;
}

TEST(Tables, Version1ManifestsStillReadAndAVersion2ChildOfOneDoes) {
    auto storage = storage::open_memory("tables-v1");
    Manifest v1 = sample_manifest(k_app, k_first, {k_first});
    auto text = serialize_manifest(v1);
    ASSERT_TRUE(text);
    EXPECT_NE(text->find("\"schema_version\": 1"), std::string::npos);
    EXPECT_NE(text->find("refs/heads/main"), std::string::npos) << "refs inline";
    ASSERT_TRUE(storage->put(layout::manifest_key(k_app, k_first), *text, Overwrite::no));
    auto old = read_latest_manifest(*storage, k_app);
    ASSERT_TRUE(old && *old) << (old ? "none" : old.error().message);
    EXPECT_EQ((*old)->schema_version, 1);
    EXPECT_FALSE((*old)->table);
    Manifest child = **old;
    child.snapshot_id = k_second;
    child.kind = SnapshotKind::unchanged;
    child.parent = k_first;
    ASSERT_TRUE(publish_manifest(*storage, child, Overwrite::no, (*old)->table));
    EXPECT_EQ(tables_in(*storage), 1u) << "a v1 parent has no table to share";
    auto read = read_manifest(*storage, k_app, k_second);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->schema_version, 2);
    EXPECT_EQ(read->refs, v1.refs);
    EXPECT_EQ(read->bundles, v1.bundles);
    auto referenced = referenced_bundles(*storage, k_app);
    ASSERT_TRUE(referenced);
    EXPECT_TRUE(referenced->contains(read->table->key));
    EXPECT_TRUE(referenced->contains(layout::bundle_key(k_app, k_first)));
}

TEST(Tables, ACrashBetweenTableAndManifestLeavesAnOrphanThatGcTakes) {
    World world;
    auto chain = world.publish_chain(2);
    world.commit("orphaned");
    FaultStorage killed(world.storage());
    killed.fail_nth(Op::mutation, 3, Fault::crash); // bundle, table, then the manifest
    EXPECT_FALSE(world.publish(killed, world.git(), &chain.back()));
    // Readers see the last committed snapshot, whole.
    auto latest = read_latest_manifest(world.storage(), k_repo);
    ASSERT_TRUE(latest && *latest);
    EXPECT_EQ((*latest)->snapshot_id, chain.back().snapshot_id);
    EXPECT_EQ((*latest)->refs, chain.back().refs);
    auto scan = find_leftovers(world.storage(), {});
    ASSERT_TRUE(scan);
    std::size_t orphan_tables = 0;
    for (const auto& item : scan->items)
        orphan_tables += item.kind == Leftover::Kind::orphan_table ? 1 : 0;
    EXPECT_EQ(orphan_tables, 1u);
    world.job().gc.min_age_s = 0;
    auto out = run_gc(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    auto listed = world.storage().list(layout::tables_prefix(k_repo));
    ASSERT_TRUE(listed);
    EXPECT_EQ(listed->size(), 2u) << "the two committed snapshots' tables stay";
    for (const auto& m : chain)
        EXPECT_TRUE(read_manifest(world.storage(), k_repo, m.snapshot_id)) << m.snapshot_id;
}

TEST(Tables, PruneDeletesTheTablesOnlyDroppedManifestsNamed) {
    World world;
    auto chain = world.publish_chain(3);
    world.job().prune.policy.keep_last = 1;
    world.job().prune.rebase = false;
    auto out = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    auto listed = world.storage().list(layout::tables_prefix(k_repo));
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().key, chain.back().table->key);
    auto kept = read_manifest(world.storage(), k_repo, chain.back().snapshot_id);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->refs, chain.back().refs);
}
