#include "snapshotter/cli/progress.hpp"
#include "snapshotter/util/text.hpp"

#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::cli;
using std::chrono::duration;

TEST(ProgressText, CountsRunningBytesRateAndEta) {
    snapshot::Progress p{.done = 10, .total = 50, .in_flight = 3, .bytes = 20 * 1024 * 1024, .current = {}};
    EXPECT_EQ(progress_text("snapshot", "repositories", p, duration<double>(10.0), 200),
              "snapshot  10/50 repositories  3 running  20.0 MiB  2.0 MiB/s  10s  ETA 40s");
}

TEST(ProgressText, LeavesOutWhatItHasNoDataFor) {
    snapshot::Progress p{.done = 0, .total = 2, .in_flight = 0, .bytes = 0, .current = "org/app"};
    EXPECT_EQ(progress_text("verify", "snapshots", p, duration<double>(75.0), 200),
              "verify  0/2 snapshots  1m15s  org/app");
}

TEST(ProgressText, NeverWiderThanTheTerminal) {
    snapshot::Progress p{.done = 1, .total = 2, .in_flight = 1, .bytes = 0, .current = std::string(300, 'x')};
    auto line = progress_text("restore", "repositories", p, duration<double>(1.0), 40);
    EXPECT_LE(display_width(line), 39u) << line; // the last column stays free: no wrap
    EXPECT_TRUE(line.ends_with("…")) << line;
    EXPECT_TRUE(line.starts_with("restore  1/2 repositories")) << line;
}

TEST(ProgressText, ControlCharactersInNamesAreNotSentToTheTerminal) {
    snapshot::Progress p{.done = 0, .total = 1, .in_flight = 1, .bytes = 0, .current = "org/\x1b[2Japp"};
    auto line = progress_text("restore", "repositories", p, duration<double>(1.0), 200);
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
}
