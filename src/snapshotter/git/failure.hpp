// The one place where git/ reads a failure's text: what git, ssh or a git
// server said only in words (git gives no other signal) is judged once, where
// the text arrives (a git or ssh process exiting, a server's ERR packet or
// fatal side-band message), and the verdict is stored in the Error's Cause
// (util/error.hpp). Everything downstream reads the Cause, never the message.
#pragma once

#include "snapshotter/util/error.hpp"

#include <string_view>

namespace snapshotter::git {

// The cause that `text` (the stderr of a git or ssh process that failed, or a
// git server's error message) describes: refused for a permanent refusal
// (authentication, permission, a missing or disabled repository), which wins
// over anything else in the text; else unspecified for a local write that
// failed (no space left, quota, file too large: no retry, whatever git says
// after it); else a transient cause (network, reset,
// timeout, http_5xx, http_429) for a failure worth retrying; else protocol
// when it names a protocol error; else unspecified.
Cause classify_git_stderr(std::string_view text);

// A Git error "`what`: <the last lines of `stderr_text`, redacted>" whose
// cause is classify_git_stderr() of those lines: a git command that failed.
Error git_failure(std::string_view what, std::string_view stderr_text);

} // namespace snapshotter::git
