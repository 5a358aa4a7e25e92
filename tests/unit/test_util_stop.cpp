#include "snapshotter/util/process.hpp"
#include "snapshotter/util/stop.hpp"

#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>

using namespace snapshotter;

// The stop flag is process-wide and one-way: every test that sets it runs
// in a forked child (a death test).

TEST(Stop, NotRequestedUnlessAsked) {
    EXPECT_FALSE(stop_requested());
}

TEST(Stop, RequestStopSetsTheFlagOnly) {
    EXPECT_EXIT(
        {
            bool ok = !stop_requested();
            request_stop();
            ok = ok && stop_requested() && !processes_aborted();
            std::_Exit(ok ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(Stop, FirstSignalRequestsStopSecondAbortsChildren) {
    for (int sig : {SIGTERM, SIGINT}) {
        EXPECT_EXIT(
            {
                install_stop_handlers();
                std::raise(sig); // would kill the process without the handler
                bool ok = stop_requested() && !processes_aborted();
                std::raise(sig);
                ok = ok && processes_aborted();
                std::_Exit(ok ? 0 : 1);
            },
            ::testing::ExitedWithCode(0), "")
            << "signal " << sig;
    }
}
