// Logging to stderr: JSON lines when stderr is not a terminal, readable lines
// on a terminal. Every message is redacted before it is written.
#pragma once

#include <spdlog/spdlog.h>
#include <string_view>

namespace snapshotter {

enum class LogFormat { automatic, json, text };

// Install the stderr logger at `level` ("trace".."off"); `format` automatic
// picks text on a terminal and JSON lines otherwise. Returns false for an
// unknown level name.
bool init_logging(std::string_view level, LogFormat format = LogFormat::automatic);

// True when stderr is a terminal and logs are readable text (progress lines
// are drawn only then).
bool stderr_is_interactive();

// Write one line to stderr as it is, bypassing the logger (used for the
// CloudWatch EMF lines that must be raw JSON).
void write_stderr_line(std::string_view line);

// Show `text` (one line, no newline, shorter than the terminal is wide) as the
// status line at the bottom of stderr: it replaces the one shown, and every
// log line and write_stderr_line clears it first and draws it again after
// itself. Empty `text` clears it. For terminals only (stderr_is_interactive).
void set_status_line(std::string_view text);

// Erase the status line, if one is shown.
void clear_status_line();

} // namespace snapshotter
