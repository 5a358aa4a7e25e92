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

// Write `text` to stderr as it is, without a newline (progress lines).
void write_stderr_raw(std::string_view text);

} // namespace snapshotter
