// The command line: flags, the payload source, one line of JSON on stdout.
#pragma once

namespace snapshotter::cli {

// Run snapshotter with `argv`; prints exactly one JSON line on stdout and
// returns the process exit code (0 ok, 1 error, 2 partial failure). Never throws.
int run(int argc, char** argv);

} // namespace snapshotter::cli
