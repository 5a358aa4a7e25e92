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
#include "snapshotter/snapshot/referenced.hpp"
#include "snapshotter/snapshot/tables.hpp"
#include "snapshotter/storage/backends.hpp"
#include "snapshotter/util/hash.hpp"

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

TEST(Tables, AVersion4ManifestRoundTripsThroughItsTable) {
    auto storage = storage::open_memory("tables-roundtrip");
    Manifest m = many_refs(k_first, 270);
    m.shallow = {std::string(40, 'b')};
    auto key = publish_manifest(*storage, m, Overwrite::no);
    ASSERT_TRUE(key) << key.error().message;
    ASSERT_TRUE(m.table);
    EXPECT_EQ(m.table->key, layout::table_key(k_app, m.table->sha256));
    EXPECT_EQ(m.table->count, 271u);
    EXPECT_EQ(tables_in(*storage), 1u);
    auto stored = storage->get(*key);
    ASSERT_TRUE(stored);
    EXPECT_LT(stored->size(), 1024u) << "the manifest of 271 refs stays small";
    ASSERT_EQ(stored->substr(0, 2), "\x1f\x8b") << "version 4 is stored gzip-compressed";
    auto text = gzip_decompress(*stored, k_max_manifest_bytes);
    ASSERT_TRUE(text) << text.error().message;
    EXPECT_GT(text->size(), stored->size());
    EXPECT_NE(text->find("\"schema_version\":4"), std::string::npos) << *text;
    EXPECT_EQ(text->find("refs/heads/branch-0001"), std::string::npos);
    EXPECT_EQ(text->find("tables/"), std::string::npos) << "version 3 leaves the key to layout";
    auto read = read_manifest(*storage, k_app, k_first);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->schema_version, k_manifest_schema_version);
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
    EXPECT_EQ(read->schema_version, k_manifest_schema_version);
    EXPECT_EQ(read->refs, v1.refs);
    EXPECT_EQ(read->bundles, v1.bundles);
    auto referenced = read_referenced(*storage, k_app, LfsSets::skip);
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
    std::set<std::string> keys, held;
    for (const auto& o : *listed)
        keys.insert(o.key);
    for (const auto& t : chain.back().table_chain)
        held.insert(t.key);
    EXPECT_EQ(keys, held) << "the kept snapshot's table and its bases, if a delta";
    auto kept = read_manifest(world.storage(), k_repo, chain.back().snapshot_id);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->refs, chain.back().refs);
}

TEST(Tables, APruneRebaseRewritesTheKeptManifestWithAFullTable) {
    World world;
    auto chain = world.publish_chain(3);
    // A rebase rewrites the kept manifest with a full table: the old chain goes.
    world.job().prune.policy.keep_last = 1;
    world.job().prune.rebase = true;
    auto out = run_prune(world.context(world.storage(), world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    auto listed = world.storage().list(layout::tables_prefix(k_repo));
    ASSERT_TRUE(listed);
    auto kept = read_manifest(world.storage(), k_repo, chain.back().snapshot_id);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->refs, chain.back().refs);
    ASSERT_EQ(kept->table_chain.size(), 1u);
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().key, kept->table->key);
}

namespace {

// Keys of the tables stored for k_app (or `repo`), sorted.
std::set<std::string> table_keys(storage::Storage& storage, const std::string& repo = k_app) {
    std::set<std::string> keys;
    auto listed = storage.list(layout::tables_prefix(repo));
    EXPECT_TRUE(listed);
    if (listed)
        for (const auto& o : *listed)
            keys.insert(o.key);
    return keys;
}

std::set<std::string> chain_keys(const Manifest& m) {
    std::set<std::string> keys;
    for (const auto& t : m.table_chain)
        keys.insert(t.key);
    return keys;
}

// `m` with object ids as random as real ones (so its table compresses as a real one does).
Manifest with_random_oids(Manifest m) {
    for (auto& [name, target] : m.refs)
        target.oid = sha256_hex(name).substr(0, 40);
    return m;
}

// Store table `text` of k_app as it is (a hostile writer may store anything
// under a digest's key); its reference.
TableRef store_raw_table(storage::Storage& storage, const std::string& text, std::uint64_t count) {
    auto gz = gzip_compress(text);
    EXPECT_TRUE(gz);
    const auto digest = sha256_hex(text);
    TableRef ref{layout::table_key(k_app, digest), digest, gz->size(), text.size(), count};
    EXPECT_TRUE(storage.put(ref.key, *gz, Overwrite::yes));
    return ref;
}

// A manifest of k_app naming `ref`, its sets read back through the chain.
// An incremental night after `parent`: snapshot `id`, with `ref` moved.
Manifest night_after(const Manifest& parent, const std::string& id, const std::string& ref) {
    Manifest child = parent;
    child.snapshot_id = id;
    child.kind = SnapshotKind::incremental;
    child.refs[ref] = {std::string(40, 'e'), ""};
    return child;
}

Result<Manifest> read_through(storage::Storage& storage, const TableRef& ref) {
    Manifest m = many_refs(k_second, 0);
    m.refs.clear();
    m.preserved.clear();
    m.bundles.clear();
    m.table = ref;
    if (auto s = load_table(storage, m, Fresh::yes); !s)
        return fail(s.error());
    return m;
}

// The base's reference as a delta writes it (no key).
nlohmann::json base_json(const TableRef& ref) {
    return {{"sha256", ref.sha256}, {"size", ref.size}, {"raw_size", ref.raw_size}, {"count", ref.count}};
}

} // namespace

TEST(DeltaTables, AMovedRefWritesASmallDeltaThatReadsBackExactly) {
    auto memory = storage::open_memory("delta-roundtrip");
    FaultStorage storage(*memory);
    Manifest parent = with_random_oids(many_refs(k_first, 270));
    parent.shallow = {std::string(40, 'd')};
    ASSERT_TRUE(publish_manifest(storage, parent, Overwrite::no));
    ASSERT_EQ(parent.table_chain.size(), 1u);
    // One night: refs moved, created and deleted, a bundle appended, tips set
    // and dropped, the shallow boundary changed.
    Manifest child = parent;
    child.snapshot_id = k_second;
    child.parent = k_first;
    child.kind = SnapshotKind::incremental;
    child.refs["refs/heads/branch-0001"] = {std::string(40, 'b'), ""};
    child.refs["refs/tags/v9"] = {std::string(40, 'c'), std::string(40, 'b')};
    child.refs.erase("refs/heads/branch-0002");
    child.bundles.push_back(
        {k_second, layout::bundle_key(k_app, k_second), 99, std::string(64, '1'), {std::string(40, 'a')}});
    child.preserved.clear();
    child.preserved[k_second + "/refs/heads/branch-0002"] = std::string(40, 'a');
    child.shallow = {};
    storage.reset();
    ASSERT_TRUE(publish_manifest(storage, child, Overwrite::no, parent.table));
    EXPECT_EQ(storage.count(Op::put), 2u) << "the delta, then the manifest";
    ASSERT_EQ(child.table_chain.size(), 2u);
    EXPECT_EQ(child.table_chain.back(), *parent.table);
    EXPECT_LT(child.table->size, 700u) << "a delta, not a table of 270 refs";
    EXPECT_LT(child.table->size * 4, parent.table->size);
    auto text = get_table(*memory, k_app, *child.table, Fresh::yes);
    ASSERT_TRUE(text);
    EXPECT_NE(text->find("\"base\""), std::string::npos) << *text;
    auto read = read_manifest(*memory, k_app, k_second);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->refs, child.refs);
    EXPECT_EQ(read->bundles, child.bundles);
    EXPECT_EQ(read->preserved, child.preserved);
    EXPECT_EQ(read->shallow, child.shallow);
    EXPECT_EQ(read->table_chain, child.table_chain);
    // The parent is unchanged, and both tables are referenced.
    auto first = read_manifest(*memory, k_app, k_first);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->refs, parent.refs);
    auto referenced = read_referenced(*memory, k_app, LfsSets::skip);
    ASSERT_TRUE(referenced);
    for (const auto& key : table_keys(*memory))
        EXPECT_TRUE(referenced->contains(key)) << key;
}

TEST(DeltaTables, TheFormFollowsKindDepthAndSize) {
    const TableRef full{"f", std::string(64, 'f'), 1000, 5000, 10};
    const TableRef delta{"d", std::string(64, 'd'), 100, 300, 10};
    const auto sized = [](std::uint64_t size) {
        return TableRef{"n", std::string(64, 'n'), size, 3 * size, 10};
    };
    const auto night = SnapshotKind::incremental;
    EXPECT_EQ(choose_table_form({}, false, sized(10), night), TableForm::full) << "no base table";
    EXPECT_EQ(choose_table_form({}, true, {}, night), TableForm::full) << "a version-1 parent";
    EXPECT_EQ(choose_table_form({full}, true, {}, night), TableForm::reuse);
    EXPECT_EQ(choose_table_form({delta, full}, true, {}, SnapshotKind::unchanged), TableForm::reuse);
    EXPECT_EQ(choose_table_form({full}, false, sized(100), night), TableForm::delta);
    EXPECT_EQ(choose_table_form({full}, false, sized(100), SnapshotKind::full), TableForm::full)
        << "a full snapshot's bundle costs far more than its full table";
    EXPECT_EQ(choose_table_form({full}, false, sized(2000), night), TableForm::delta)
        << "k_max_delta_bytes_ratio (2) times the full table";
    EXPECT_EQ(choose_table_form({full}, false, sized(2001), night), TableForm::full);
    EXPECT_EQ(choose_table_form({delta, delta, full}, false, sized(1800), night), TableForm::delta);
    EXPECT_EQ(choose_table_form({delta, delta, full}, false, sized(1801), night), TableForm::full)
        << "the chain's bytes";
    // A chain whose uncompressed bytes a reader would refuse gets a full table.
    const TableRef huge{"h", std::string(64, 'h'), 1000, k_max_chain_bytes - 300, 10};
    EXPECT_EQ(choose_table_form({huge}, false, sized(100), night), TableForm::delta)
        << "300 bytes: at the bound";
    EXPECT_EQ(choose_table_form({huge}, false, sized(101), night), TableForm::full) << "303 bytes: past it";
    std::vector<TableRef> deep(k_max_table_depth, TableRef{"d", std::string(64, 'd'), 1, 3, 10});
    deep.push_back(full);
    EXPECT_EQ(choose_table_form(deep, false, sized(1), night), TableForm::full)
        << "depth " << k_max_table_depth + 1;
    deep.erase(deep.begin());
    EXPECT_EQ(choose_table_form(deep, false, sized(1), night), TableForm::delta)
        << "depth " << k_max_table_depth;
}

TEST(DeltaTables, ANightlyChainStaysWithinItsDepthAndEverySnapshotReadsBack) {
    auto storage = storage::open_memory("delta-depth");
    std::vector<Manifest> nights{many_refs(k_first, 200)};
    ASSERT_TRUE(publish_manifest(*storage, nights.back(), Overwrite::no));
    std::size_t fulls = 1, deepest = 0;
    for (int night = 1; night <= 2 * k_max_table_depth + 3; ++night) {
        Manifest next = nights.back();
        next.snapshot_id = fmt::format("2026112{}T{:06}.000Z-abcdef", night / 10, night % 10);
        next.parent = nights.back().snapshot_id;
        next.kind = SnapshotKind::incremental;
        next.refs[fmt::format("refs/heads/branch-{:04}", night)] = {fmt::format("{:040x}", night), ""};
        ASSERT_TRUE(publish_manifest(*storage, next, Overwrite::no, nights.back().table));
        deepest = std::max(deepest, next.table_chain.size() - 1);
        fulls += next.table_chain.size() == 1 ? 1 : 0;
        nights.push_back(std::move(next));
    }
    EXPECT_LE(deepest, static_cast<std::size_t>(k_max_table_depth));
    EXPECT_GE(fulls, 3u) << "a full table again once the chain is deep enough";
    for (const auto& m : nights) {
        auto read = read_manifest(*storage, k_app, m.snapshot_id);
        ASSERT_TRUE(read) << m.snapshot_id << ": " << read.error().message;
        EXPECT_EQ(read->refs, m.refs) << m.snapshot_id;
        EXPECT_EQ(read->table_chain, m.table_chain) << m.snapshot_id;
    }
    // An unchanged night shares its parent's delta.
    Manifest same = nights.back();
    same.snapshot_id = "20261130T000000.000Z-ffffff";
    ASSERT_TRUE(publish_manifest(*storage, same, Overwrite::no, nights.back().table));
    EXPECT_EQ(same.table, nights.back().table);
    EXPECT_EQ(same.table_chain, nights.back().table_chain);
}

TEST(DeltaTables, AMissingOrTamperedBaseIsAnIntegrityErrorNamingIt) {
    auto storage = storage::open_memory("delta-tampered");
    Manifest parent = many_refs(k_first, 50);
    ASSERT_TRUE(publish_manifest(*storage, parent, Overwrite::no));
    Manifest child = night_after(parent, k_second, "refs/heads/branch-0003");
    ASSERT_TRUE(publish_manifest(*storage, child, Overwrite::no, parent.table));
    ASSERT_EQ(child.table_chain.size(), 2u);
    const auto base_key = parent.table->key;
    auto stored = storage->get(base_key);
    ASSERT_TRUE(stored);
    std::string flipped = *stored;
    flipped[flipped.size() / 2] ^= 0x20;
    ASSERT_TRUE(storage->put(base_key, flipped, Overwrite::yes));
    auto tampered = read_through(*storage, *child.table);
    ASSERT_FALSE(tampered);
    EXPECT_EQ(tampered.error().kind, ErrorKind::Integrity);
    EXPECT_NE(tampered.error().message.find(base_key), std::string::npos) << tampered.error().message;
    std::vector<std::string> gone{base_key};
    ASSERT_TRUE(storage->remove(gone));
    auto missing = read_through(*storage, *child.table);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().kind, ErrorKind::Integrity);
    EXPECT_NE(missing.error().message.find(base_key), std::string::npos) << missing.error().message;
    EXPECT_NE(missing.error().message.find("missing"), std::string::npos) << missing.error().message;
}

// A base this process has not read and cannot read back (here: tampered
// before any read; its random refs keep it out of the in-process cache) gets
// its child a full table, not a delta on something no reader could apply.
TEST(DeltaTables, AnUnreadableBaseGetsItsChildAFullTable) {
    auto storage = storage::open_memory("delta-unreadable-base");
    Manifest parent = with_random_oids(many_refs(k_first, 50));
    ASSERT_TRUE(publish_manifest(*storage, parent, Overwrite::no));
    auto stored = storage->get(parent.table->key);
    ASSERT_TRUE(stored);
    std::string flipped = *stored;
    flipped[flipped.size() / 2] ^= 0x20;
    ASSERT_TRUE(storage->put(parent.table->key, flipped, Overwrite::yes));
    Manifest child = night_after(parent, k_second, "refs/heads/branch-0004");
    ASSERT_TRUE(publish_manifest(*storage, child, Overwrite::no, parent.table));
    EXPECT_EQ(child.table_chain.size(), 1u);
    auto read = read_manifest(*storage, k_app, k_second);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->refs, child.refs);
}

TEST(DeltaTables, ChainsThatLieAboutTheirShapeAreRefused) {
    auto storage = storage::open_memory("delta-hostile");
    const std::string oid(40, 'a');
    const std::string bundle =
        fmt::format(R"({{"key":"{}","prerequisites":[],"sha256":"{}","size":3,"snapshot_id":"{}"}})",
                    layout::bundle_key(k_app, k_first), std::string(64, '0'), k_first);
    const auto full = store_raw_table(
        *storage,
        fmt::format(R"({{"bundles":[{}],"preserved":{{}},"refs":{{"refs/heads/main":{{"oid":"{}"}}}}}})",
                    bundle, oid),
        1);
    ASSERT_TRUE(read_through(*storage, full));
    // A delta of depth `depth` on `base` holding `body` (members after base and depth).
    auto delta = [&](const TableRef& base, int depth, const std::string& body, std::uint64_t count = 1) {
        nlohmann::json j = nlohmann::json::parse("{" + body + "}");
        j["base"] = base_json(base);
        j["depth"] = depth;
        return store_raw_table(*storage, j.dump(), count);
    };
    auto expect_refused = [&](const TableRef& ref, const std::string& what, const std::string& says) {
        auto read = read_through(*storage, ref);
        ASSERT_FALSE(read) << what;
        EXPECT_EQ(read.error().kind, ErrorKind::Integrity) << what;
        EXPECT_NE(read.error().message.find(says), std::string::npos) << what << ": " << read.error().message;
    };
    const auto good =
        delta(full, 1, R"("bundles_kept":1,"refs_set":{"refs/heads/x":{"oid":")" + oid + R"("}})", 2);
    auto read = read_through(*storage, good);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->refs.size(), 2u);
    // Depths must fall by one to the full table: a loop would need a base at
    // the same depth (and a SHA-256 fixpoint), a skipped level is as wrong.
    expect_refused(delta(good, 1, R"("bundles_kept":1)", 2), "a base at the same depth",
                   "depth 1 as the base");
    expect_refused(delta(full, 2, R"("bundles_kept":1)"), "a full table under depth 2",
                   "depth 0 as the base");
    expect_refused(delta(full, k_max_table_depth + 1, R"("bundles_kept":1)"), "too deep", "depth");
    expect_refused(delta(full, 0, R"("bundles_kept":1)"), "depth 0 with a base", "depth");
    // Changes that do not apply to the base.
    expect_refused(delta(full, 1, R"("bundles_kept":1,"refs_removed":["refs/heads/none"])", 0),
                   "removes a stranger", "refs/heads/none");
    expect_refused(delta(full, 1, R"("bundles_kept":2)"), "keeps more bundles than there are",
                   "keeps 2 bundles");
    expect_refused(delta(full, 1, R"("bundles_kept":0)"), "refs without a bundle", "no bundle");
    expect_refused(
        delta(
            full, 1,
            R"("bundles_kept":1,"refs_removed":["refs/heads/main"],"refs_set":{"refs/heads/main":{"oid":")" +
                oid + R"("}})"),
        "sets and removes one ref", "both sets and removes");
    expect_refused(delta(full, 1, R"("bundles_kept":1,"refs_set":{"refs/heads/y":{"oid":"xyz"}})", 2),
                   "a bad oid", "invalid object id");
    expect_refused(delta(full, 1, R"("bundles_kept":1,"future":1)"), "a member from the future", "future");
    expect_refused(delta(full, 1, R"("bundles_kept":1)", 7), "a count that lies", "7");
    // A missing base names its key; a base whose key is another repository's cannot be named (keys come from
    // layout).
    TableRef absent{layout::table_key(k_app, std::string(64, 'c')), std::string(64, 'c'), 10, 10, 1};
    expect_refused(delta(absent, 1, R"("bundles_kept":1)"), "a missing base", absent.key);
    // A bomb: a base whose stored bytes inflate past what its reference claims.
    auto bomb = gzip_compress(std::string(1 << 20, '0'));
    ASSERT_TRUE(bomb);
    TableRef claimed{layout::table_key(k_app, std::string(64, 'b')), std::string(64, 'b'), bomb->size(), 100,
                     1};
    ASSERT_TRUE(storage->put(claimed.key, *bomb, Overwrite::yes));
    expect_refused(delta(claimed, 1, R"("bundles_kept":1)"), "a gzip bomb as the base", "inflates past");
}

TEST(DeltaTables, AVersion2ParentGetsAVersion3DeltaChild) {
    auto storage = storage::open_memory("delta-v2-parent");
    Manifest parent = many_refs(k_first, 30);
    ASSERT_TRUE(publish_manifest(*storage, parent, Overwrite::no));
    // Rewrite it as version 2 wrote it: the key in its table reference.
    parent.schema_version = k_manifest_schema_version_v2;
    auto v2 = serialize_manifest(parent);
    ASSERT_TRUE(v2);
    EXPECT_NE(v2->find(parent.table->key), std::string::npos);
    ASSERT_TRUE(storage->put(layout::manifest_key(k_app, k_first), *v2, Overwrite::yes));
    auto old = read_manifest(*storage, k_app, k_first);
    ASSERT_TRUE(old) << old.error().message;
    EXPECT_EQ(old->schema_version, 2);
    Manifest child = *old;
    child.snapshot_id = k_second;
    child.kind = SnapshotKind::incremental;
    child.refs["refs/heads/branch-0007"] = {std::string(40, 'c'), ""};
    ASSERT_TRUE(publish_manifest(*storage, child, Overwrite::no, old->table));
    EXPECT_EQ(child.table_chain.size(), 2u);
    auto read = read_manifest(*storage, k_app, k_second);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->schema_version, k_manifest_schema_version);
    EXPECT_EQ(read->refs, child.refs);
}

TEST(DeltaTables, PruneAndGcKeepTheBasesOfKeptTables) {
    World world; // for the actions' context; the snapshots are k_app's, with many refs
    auto& storage = world.storage();
    std::vector<Manifest> nights{with_random_oids(many_refs(k_first, 100))};
    ASSERT_TRUE(publish_manifest(storage, nights.back(), Overwrite::no));
    for (const auto& id : {k_second, k_third, std::string("20261104T000000.000Z-dddddd")}) {
        Manifest next = nights.back();
        next.snapshot_id = id;
        next.parent = nights.back().snapshot_id;
        next.kind = SnapshotKind::incremental;
        next.refs[fmt::format("refs/heads/{}", id)] = {std::string(40, 'b'), ""};
        ASSERT_TRUE(publish_manifest(storage, next, Overwrite::no, nights.back().table));
        nights.push_back(std::move(next));
    }
    const auto last = nights.back();
    ASSERT_EQ(last.table_chain.size(), 4u) << "three deltas on the first night's full table";
    // gc: a base is no orphan.
    auto scan = find_leftovers(storage, {k_app});
    ASSERT_TRUE(scan);
    for (const auto& item : scan->items)
        EXPECT_NE(item.kind, Leftover::Kind::orphan_table) << item.key;
    world.job().gc.min_age_s = 0;
    auto gc = run_gc(world.context(storage, world.git()));
    ASSERT_FALSE(gc.error) << gc.error->message;
    EXPECT_EQ(table_keys(storage).size(), 4u);
    // prune of the middle two, without a rebase: the newest's chain stays whole.
    world.job().prune.repositories = {k_app};
    world.job().prune.policy.keep_last = 1;
    world.job().prune.policy.pinned = {k_first};
    world.job().prune.rebase = false;
    auto out = run_prune(world.context(storage, world.git()));
    ASSERT_FALSE(out.error) << out.error->message;
    auto ids = list_snapshot_ids(storage, k_app);
    ASSERT_TRUE(ids);
    EXPECT_EQ(ids->size(), 2u);
    EXPECT_EQ(table_keys(storage), chain_keys(last));
    for (const auto& m : {nights.front(), last}) {
        auto kept = read_manifest(storage, k_app, m.snapshot_id);
        ASSERT_TRUE(kept) << kept.error().message;
        EXPECT_EQ(kept->refs, m.refs);
        EXPECT_EQ(kept->bundles, m.bundles);
    }
}

// Manifests of every version still read, stored as they were written (plain
// JSON) or compressed; a hostile compressed one is an IntegrityError.
TEST(ManifestVersions, Versions1To3PlainAnd4CompressedAllReadBack) {
    auto storage = storage::open_memory("manifest-versions");
    Manifest v4 = many_refs(k_first, 40);
    ASSERT_TRUE(publish_manifest(*storage, v4, Overwrite::no));
    const std::vector<std::pair<std::string, int>> versions = {{k_second, k_manifest_schema_version_v3},
                                                               {k_third, k_manifest_schema_version_v2}};
    for (const auto& [id, version] : versions) {
        Manifest old = v4;
        old.snapshot_id = id;
        old.schema_version = version;
        auto text = serialize_manifest(old);
        ASSERT_TRUE(text) << text.error().message;
        EXPECT_EQ(text->front(), '{') << "version " << version << " is plain JSON";
        ASSERT_TRUE(storage->put(layout::manifest_key(k_app, id), *text, Overwrite::no));
    }
    const std::string v1_id = "20261104T000000.000Z-dddddd";
    auto v1 = serialize_manifest(sample_manifest(k_app, v1_id, {k_first}));
    ASSERT_TRUE(v1);
    ASSERT_TRUE(storage->put(layout::manifest_key(k_app, v1_id), *v1, Overwrite::no));
    for (const auto& [id, version] :
         std::vector<std::pair<std::string, int>>{{k_first, 4}, {k_second, 3}, {k_third, 2}, {v1_id, 1}}) {
        auto read = read_manifest(*storage, k_app, id);
        ASSERT_TRUE(read) << id << ": " << read.error().message;
        EXPECT_EQ(read->schema_version, version);
        EXPECT_EQ(read->refs.size(), version == 1 ? 1u : v4.refs.size()) << id;
    }
    // Any version reads compressed or not: the container is not the schema.
    Manifest plain4 = v4;
    plain4.schema_version = k_manifest_schema_version_v3;
    auto text = serialize_manifest(plain4);
    ASSERT_TRUE(text);
    auto as_v4 = nlohmann::json::parse(*text);
    as_v4["schema_version"] = 4;
    auto parsed = parse_manifest(as_v4.dump());
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->table, v4.table);
    auto gz3 = gzip_compress(*text);
    ASSERT_TRUE(gz3);
    parsed = parse_manifest(*gz3);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(parsed->schema_version, 3);
    // Hostile compressed manifests: truncated, trailing bytes, a bomb.
    auto good = serialize_manifest(v4);
    ASSERT_TRUE(good);
    auto bomb = gzip_compress(std::string(k_max_manifest_bytes + 1, ' '));
    ASSERT_TRUE(bomb);
    for (const std::string& bad : {good->substr(0, good->size() - 5), *good + "x", *bomb}) {
        auto refused = parse_manifest(bad);
        ASSERT_FALSE(refused);
        EXPECT_EQ(refused.error().kind, ErrorKind::Integrity) << refused.error().message;
    }
}

TEST(DeltaTables, AFullSnapshotWritesAFullTableAndItsNightsDeltasOnIt) {
    auto storage = storage::open_memory("delta-full-snapshot");
    Manifest first = many_refs(k_first, 100);
    ASSERT_TRUE(publish_manifest(*storage, first, Overwrite::no));
    Manifest night = first;
    night.snapshot_id = k_second;
    night.parent = k_first;
    night.kind = SnapshotKind::incremental;
    night.refs["refs/heads/branch-0001"] = {std::string(40, 'b'), ""};
    night.bundles.push_back({k_second, layout::bundle_key(k_app, k_second), 9, std::string(64, '2'), {}});
    ASSERT_TRUE(publish_manifest(*storage, night, Overwrite::no, first.table));
    EXPECT_EQ(night.table_chain.size(), 2u) << "an incremental night: a delta";
    Manifest full = night;
    full.snapshot_id = k_third;
    full.parent = k_second;
    full.kind = SnapshotKind::full;
    full.bundles = {{k_third, layout::bundle_key(k_app, k_third), 999, std::string(64, '3'), {}}};
    ASSERT_TRUE(publish_manifest(*storage, full, Overwrite::no, night.table));
    ASSERT_EQ(full.table_chain.size(), 1u) << "a full snapshot starts a new chain of tables";
    auto read = read_manifest(*storage, k_app, k_third);
    ASSERT_TRUE(read) << read.error().message;
    EXPECT_EQ(read->bundles, full.bundles);
    EXPECT_EQ(read->table_chain, full.table_chain);
}
