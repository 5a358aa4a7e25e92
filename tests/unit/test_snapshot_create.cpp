// snapshot_repository() in-process: a fake Engine and the memory backend.
// What each kind of snapshot writes (and only that), that a failing engine
// or a HEAD that moved between listing and fetching commits nothing, and
// that the dry run reports the plan a real run follows and writes nothing.
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/create.hpp"
#include "snapshotter/snapshot/layout.hpp"

#include <chrono>
#include <gtest/gtest.h>
#include <thread>

using namespace snapshotter;
using namespace snapshotter::snapshot;

namespace {

std::string oid(char c) {
    return std::string(40, c);
}

// What the fake engine lists and does, and what it was asked.
struct Script {
    Listing listing{
        {{"refs/heads/main", {oid('a'), ""}}}, {}, {git::HeadKind::symbolic, "refs/heads/main"}, "sha1"};
    std::optional<Error> list_error;
    std::optional<Error> produce_error;         // fail after writing (and aborting) a bundle
    std::optional<git::HeadState> fetched_head; // HEAD as fetched, when it differs from the listing
    bool unreplayable = false;                  // the engine cannot verify on the chain: it replans
    int produced = 0;                           // produce() calls
    std::optional<SnapshotPlan> plan;           // the plan produce() was given
};

// An engine that writes a small bundle for full and incremental plans.
class FakeEngine final : public Engine {
  public:
    FakeEngine(Script& script, storage::Storage& storage) : m_script(script), m_storage(storage) {}
    [[nodiscard]] std::string_view name() const override { return "stream"; }
    Result<Listing> list() override {
        if (m_script.list_error)
            return fail(*m_script.list_error);
        return m_script.listing;
    }
    Result<Produced> produce(const SnapshotPlan& plan, const PlanInput& input) override {
        ++m_script.produced;
        m_script.plan = plan;
        const auto key = layout::bundle_key("app", plan.snapshot_id);
        auto writer = m_storage.create(key, Overwrite::no);
        if (!writer)
            return fail(writer.error());
        const std::string bytes = "# v2 git bundle\n";
        if (auto s = (*writer)->write(std::as_bytes(std::span(bytes))); !s)
            return fail(s.error());
        if (m_script.produce_error) {
            (*writer)->abort();
            return fail(*m_script.produce_error);
        }
        if (auto s = (*writer)->commit(); !s)
            return fail(s.error());
        Produced produced;
        if (m_script.unreplayable) {
            auto again = input;
            again.chain = ChainState::unreplayable;
            produced.replanned = snapshot_plan(again);
        }
        const auto& followed = produced.replanned ? *produced.replanned : plan;
        produced.refs = input.listing.selected;
        produced.head = m_script.fetched_head.value_or(input.listing.head);
        if (followed.kind == SnapshotKind::incremental)
            produced.bundles = input.previous->bundles;
        produced.bundles.push_back({plan.snapshot_id, key, bytes.size(), std::string(64, '0'), {}});
        produced.ledger = ledger_of(followed, {});
        return produced;
    }

  private:
    Script& m_script;
    storage::Storage& m_storage;
};

class CreateTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto git = git::Git::create();
        ASSERT_TRUE(git) << git.error().message;
        m_git.emplace(std::move(*git));
        m_job.job_id = "job";
        m_repo.name = "app";
        m_repo.url = "https://example.invalid/app.git";
        m_repo.refs = {"refs/heads/*", "refs/tags/*"};
    }

    // One snapshot of "app", with a fresh memory store per test.
    Result<RepoOutcome> run(bool dry_run = false) {
        // Snapshot ids carry milliseconds: keep them strictly increasing.
        std::this_thread::sleep_for(std::chrono::milliseconds{2});
        const Context ctx{m_job, *m_storage, *m_git, dry_run};
        return snapshot_repository(
            ctx, m_repo, std::nullopt, [this](const EngineContext&) -> Result<ChosenEngine> {
                auto engine = std::make_unique<FakeEngine>(m_script, *m_storage);
                auto listing = engine->list();
                if (!listing)
                    return fail(listing.error());
                return ChosenEngine{std::move(engine), std::move(*listing), std::nullopt};
            });
    }

    // Every key in storage.
    std::vector<std::string> keys() {
        std::vector<std::string> out;
        auto listed = m_storage->list("");
        EXPECT_TRUE(listed);
        for (const auto& info : *listed)
            out.push_back(info.key);
        return out;
    }

    std::string latest_text() { return m_storage->get(layout::latest_key("app")).value_or(""); }

    Manifest latest_manifest() {
        auto m = read_latest_manifest(*m_storage, "app");
        EXPECT_TRUE(m && *m);
        return **m;
    }

    job::Job m_job;
    job::Repository m_repo;
    std::optional<git::Git> m_git;
    std::unique_ptr<storage::Storage> m_storage =
        storage::open_memory(::testing::UnitTest::GetInstance()->current_test_info()->name());
    Script m_script;
};

} // namespace

TEST_F(CreateTest, FirstSnapshotIsFullAndWritesBundleManifestAndLatest) {
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->status, RepositoryStatus::ok);
    EXPECT_EQ(outcome->detail["kind"], "full");
    EXPECT_EQ(outcome->detail["engine"], "stream");
    EXPECT_EQ(m_script.produced, 1);
    EXPECT_EQ(keys().size(), 4U); // bundle, table, manifest, latest
    auto m = latest_manifest();
    EXPECT_EQ(m.kind, SnapshotKind::full);
    EXPECT_EQ(m.refs, m_script.listing.selected);
    EXPECT_EQ(m.head, "refs/heads/main");
    EXPECT_FALSE(m.parent);
    ASSERT_EQ(m.bundles.size(), 1U);
    EXPECT_EQ(outcome->bytes, m.bundles[0].size);
}

TEST_F(CreateTest, AnUnchangedNightWritesAManifestAndMovesLatestOnly) {
    ASSERT_TRUE(run());
    const auto before = keys();
    const auto first = latest_manifest();
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->status, RepositoryStatus::unchanged);
    EXPECT_EQ(status_name(outcome->status), "unchanged");
    EXPECT_EQ(outcome->detail["kind"], "unchanged");
    EXPECT_EQ(outcome->detail["bundle"], nullptr);
    EXPECT_EQ(outcome->bytes, 0U);
    EXPECT_EQ(m_script.produced, 1) << "an unchanged repository is not fetched";
    auto after = keys();
    ASSERT_EQ(after.size(), before.size() + 1);
    auto m = latest_manifest();
    EXPECT_NE(std::find(after.begin(), after.end(), layout::manifest_key("app", m.snapshot_id)), after.end());
    EXPECT_EQ(m.kind, SnapshotKind::unchanged);
    EXPECT_EQ(m.parent, first.snapshot_id);
    EXPECT_EQ(m.bundles, first.bundles);
    EXPECT_EQ(m.refs, first.refs);
}

TEST_F(CreateTest, AMovedRefGrowsTheChain) {
    ASSERT_TRUE(run());
    const auto first = latest_manifest();
    m_script.listing.selected["refs/heads/main"] = {oid('b'), ""};
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->detail["kind"], "incremental");
    ASSERT_TRUE(m_script.plan);
    EXPECT_EQ(m_script.plan->moved, std::vector<std::string>{"refs/heads/main"});
    auto m = latest_manifest();
    EXPECT_EQ(m.kind, SnapshotKind::incremental);
    ASSERT_EQ(m.bundles.size(), 2U);
    EXPECT_EQ(m.bundles[0], first.bundles[0]);
    EXPECT_EQ(m.changes.at("refs/heads/main").change, RefChangeKind::updated);
    EXPECT_EQ(m.preserved.at(m.snapshot_id + "/refs/heads/main"), oid('a'));
}

TEST_F(CreateTest, AFailingProduceCommitsNothing) {
    ASSERT_TRUE(run());
    const auto before = keys();
    const auto latest = latest_text();
    m_script.listing.selected["refs/heads/main"] = {oid('b'), ""};
    m_script.produce_error = Error::git("fetch: connection reset");
    auto outcome = run();
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error().message, "fetch: connection reset");
    EXPECT_EQ(keys(), before);
    EXPECT_EQ(latest_text(), latest);
}

TEST_F(CreateTest, AHeadThatMovedSinceTheListingCommitsNoManifest) {
    m_script.fetched_head = git::HeadState{git::HeadKind::symbolic, "refs/heads/dev"};
    auto outcome = run();
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error().kind, ErrorKind::Git);
    for (const auto& key : keys())
        EXPECT_EQ(key.find("manifests/"), std::string::npos) << key;
    EXPECT_EQ(latest_text(), "");
}

TEST_F(CreateTest, AFailingListingWritesNothing) {
    m_script.list_error = Error::git("ls-refs: 403");
    auto outcome = run();
    ASSERT_FALSE(outcome);
    EXPECT_TRUE(keys().empty());
}

TEST_F(CreateTest, AnEmptyRepositoryGetsAManifestWithoutBundle) {
    m_script.listing = {{}, {}, {git::HeadKind::unborn, "refs/heads/main"}, "sha1"};
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->detail["kind"], "empty");
    EXPECT_EQ(m_script.produced, 0);
    EXPECT_EQ(keys().size(), 3U); // table (no refs), manifest, latest
    auto m = latest_manifest();
    EXPECT_TRUE(m.bundles.empty());
    EXPECT_EQ(m.head_kind, git::HeadKind::unborn);
}

TEST_F(CreateTest, TheDryRunReportsTheRealRunsPlanAndWritesNothing) {
    auto dry = run(true);
    ASSERT_TRUE(dry) << dry.error().message;
    EXPECT_EQ(dry->detail["plan"], "full");
    EXPECT_EQ(dry->detail["snapshot_id"], nullptr);
    EXPECT_TRUE(keys().empty());
    EXPECT_EQ(m_script.produced, 0);
    ASSERT_TRUE(run());
    m_script.listing.selected["refs/tags/v1"] = {oid('c'), ""};
    dry = run(true);
    ASSERT_TRUE(dry);
    EXPECT_EQ(dry->detail["plan"], "incremental");
    auto real = run();
    ASSERT_TRUE(real);
    EXPECT_EQ(real->detail["kind"], dry->detail["plan"]);
    dry = run(true);
    ASSERT_TRUE(dry);
    EXPECT_EQ(dry->status, RepositoryStatus::unchanged);
    EXPECT_EQ(dry->detail["plan"], "unchanged");
}

TEST_F(CreateTest, AChainMissingABundleStartsAFullOne) {
    ASSERT_TRUE(run());
    const auto first = latest_manifest();
    const std::vector<std::string> gone{first.bundles[0].key};
    ASSERT_TRUE(m_storage->remove(gone));
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(outcome->detail["kind"], "full");
    ASSERT_TRUE(m_script.plan);
    EXPECT_EQ(m_script.plan->previous, PreviousRole::chain_broken);
    EXPECT_FALSE(latest_manifest().parent);
}

TEST_F(CreateTest, AnEngineThatReplansRecordsTheKindItFollowed) {
    ASSERT_TRUE(run());
    const auto first = latest_manifest();
    m_script.listing.selected["refs/heads/main"] = {oid('b'), ""};
    m_script.unreplayable = true;
    auto dry = run(true);
    ASSERT_TRUE(dry);
    EXPECT_EQ(dry->detail["plan"], "incremental");
    auto outcome = run();
    ASSERT_TRUE(outcome) << outcome.error().message;
    EXPECT_EQ(m_script.plan->kind, SnapshotKind::incremental);
    EXPECT_EQ(outcome->detail["kind"], "full");
    auto m = latest_manifest();
    EXPECT_EQ(m.kind, SnapshotKind::full);
    EXPECT_EQ(m.parent, first.snapshot_id);
    ASSERT_EQ(m.bundles.size(), 1U);
    EXPECT_EQ(m.bundles[0].snapshot_id, m.snapshot_id);
    EXPECT_EQ(m.changes.at("refs/heads/main").change, RefChangeKind::updated);
}
