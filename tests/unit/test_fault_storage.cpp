// FaultStorage (fault_storage.hpp), the test wrapper itself: it counts, fails
// the Nth call, tears a commit in half and loses uncommitted writes in a crash.
#include "fault_storage.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::test;

namespace {

Status write_object(storage::Storage& s, const std::string& key, const std::string& data) {
    auto w = s.create(key, Overwrite::yes);
    if (!w)
        return fail(w.error());
    if (auto r = (*w)->write(std::as_bytes(std::span<const char>(data.data(), data.size()))); !r)
        return r;
    return (*w)->commit();
}

} // namespace

TEST(FaultStorage, CountsEveryCallAndMutations) {
    auto inner = storage::open_memory("fault-counts");
    FaultStorage s(*inner);
    ASSERT_TRUE(s.put("a", "1", Overwrite::yes));
    ASSERT_TRUE(write_object(s, "b", "22"));
    ASSERT_TRUE(s.get("a"));
    ASSERT_TRUE(s.list(""));
    std::vector<std::string> keys{"a"};
    ASSERT_TRUE(s.remove(keys));
    EXPECT_EQ(s.count(Op::put), 1U);
    EXPECT_EQ(s.count(Op::create), 1U);
    EXPECT_EQ(s.count(Op::write), 1U);
    EXPECT_EQ(s.count(Op::commit), 1U);
    EXPECT_EQ(s.count(Op::get), 1U);
    EXPECT_EQ(s.count(Op::list), 1U);
    EXPECT_EQ(s.count(Op::mutation), 3U); // put, commit, remove
    s.reset();
    EXPECT_EQ(s.count(Op::mutation), 0U);
}

TEST(FaultStorage, CountsPerKeyAndRunsABeforeActionOnceBeforeItsCall) {
    auto inner = storage::open_memory("fault-per-key");
    FaultStorage s(*inner);
    ASSERT_TRUE(s.put("a", "1", Overwrite::yes));
    ASSERT_TRUE(s.put("b", "2", Overwrite::yes));
    // Another process deletes "a" right before the first get of it reaches storage.
    int ran = 0;
    s.before(Op::get, "a", [&](storage::Storage& under) {
        ++ran;
        std::vector<std::string> one{"a"};
        ASSERT_TRUE(under.remove(one));
    });
    ASSERT_TRUE(s.get("b"));
    EXPECT_EQ(ran, 0);
    auto gone = s.get("a");
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().kind, ErrorKind::NotFound);
    EXPECT_EQ(ran, 1);
    EXPECT_FALSE(s.get("a"));
    EXPECT_EQ(ran, 1) << "once";
    EXPECT_EQ(s.count(Op::get, "a"), 2U);
    EXPECT_EQ(s.count(Op::get, "b"), 1U);
    EXPECT_EQ(s.count(Op::put, "a"), 1U);
    EXPECT_EQ(s.count(Op::get, "c"), 0U);
    s.reset();
    EXPECT_EQ(s.count(Op::get, "a"), 0U);
}

TEST(FaultStorage, FailsOnlyTheNthCall) {
    auto inner = storage::open_memory("fault-nth");
    FaultStorage s(*inner);
    s.fail_nth(Op::put, 2);
    EXPECT_TRUE(s.put("a", "1", Overwrite::yes));
    auto second = s.put("b", "2", Overwrite::yes);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().kind, ErrorKind::Storage);
    EXPECT_TRUE(s.put("c", "3", Overwrite::yes));
    EXPECT_FALSE(inner->get("b"));
    EXPECT_TRUE(inner->get("c"));
}

TEST(FaultStorage, TearLeavesHalfTheObject) {
    auto inner = storage::open_memory("fault-tear");
    FaultStorage s(*inner);
    s.fail_nth(Op::commit, 1, Fault::tear);
    EXPECT_FALSE(write_object(s, "big", "0123456789"));
    EXPECT_EQ(*inner->get("big"), "01234");
    s.fail_nth(Op::put, 1, Fault::tear);
    EXPECT_FALSE(s.put("small", "abcd", Overwrite::yes));
    EXPECT_EQ(*inner->get("small"), "ab");
}

TEST(FaultStorage, CrashLosesUncommittedWritesUntilRestart) {
    auto inner = storage::open_memory("fault-crash");
    FaultStorage s(*inner);
    auto open = s.create("pending", Overwrite::yes);
    ASSERT_TRUE(open);
    ASSERT_TRUE((*open)->write(std::as_bytes(std::span<const char>("xyz", 3))));
    s.fail_nth(Op::mutation, 1, Fault::crash);
    EXPECT_FALSE(s.put("a", "1", Overwrite::yes));
    EXPECT_TRUE(s.crashed());
    EXPECT_FALSE(s.get("anything"));
    s.restart();
    EXPECT_FALSE((*open)->commit()); // its bytes died with the crash
    EXPECT_FALSE(inner->get("pending"));
    EXPECT_FALSE(inner->get("a"));
    EXPECT_TRUE(s.put("a", "1", Overwrite::yes));
}
