#include "snapshotter/util/stop.hpp"

#include "snapshotter/util/process.hpp"

#include <atomic>
#include <csignal>

namespace snapshotter {
namespace {

std::atomic<int> g_stop_signals{0};

extern "C" void on_stop_signal(int) {
    if (g_stop_signals.fetch_add(1) >= 1)
        abort_all_processes();
}

} // namespace

void request_stop() {
    g_stop_signals.fetch_add(1);
}

bool stop_requested() {
    return g_stop_signals.load() > 0;
}

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGINT, &action, nullptr);
}

} // namespace snapshotter
