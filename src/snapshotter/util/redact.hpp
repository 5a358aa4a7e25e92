// Secret hygiene: every message that leaves the process (logs, results,
// manifests, error texts) passes through redact().
#pragma once

#include <string>
#include <string_view>

namespace snapshotter {

// Remember `secret` so that redact() replaces it everywhere; values shorter
// than 4 bytes are ignored (they would blank out ordinary words). Thread-safe.
void register_secret(std::string_view secret);

// `text` with every registered secret, URL password (`user:pw@`) and
// credential-bearing query value (token=, X-Amz-Signature=, ...) replaced by "***".
std::string redact(std::string_view text);

// `url` without its userinfo password and credential query values; the form
// stored in manifests and shown in messages.
std::string redact_url(std::string_view url);

} // namespace snapshotter
