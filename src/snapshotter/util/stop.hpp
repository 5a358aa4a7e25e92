// A process-wide "please stop" flag, set from a signal handler (SIGTERM,
// SIGINT) and read by long-running loops.
#pragma once

namespace snapshotter {

// Ask the job to stop starting new work. Async-signal-safe.
void request_stop();

// True once request_stop() was called.
bool stop_requested();

// Install SIGTERM and SIGINT handlers that call request_stop(); a second
// signal of either kind also aborts running child processes at once.
void install_stop_handlers();

} // namespace snapshotter
