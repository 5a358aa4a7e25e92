// The command line: flags, the payload source, one line of JSON on stdout
// (or, with `--output table`, the list action's table for people).
#pragma once

namespace snapshotter::cli {

// Run snapshotter with `argv`; prints exactly one JSON line on stdout and
// returns the process exit code (0 ok, 1 error, 2 partial failure, 3
// interrupted). With `--output table` stdout carries the list table instead
// and an error is one line on stderr ("snapshotter: <Kind>: <message>"), with
// the same exit codes; other actions are refused with UsageError before
// anything runs. Never throws.
int run(int argc, char** argv);

} // namespace snapshotter::cli
