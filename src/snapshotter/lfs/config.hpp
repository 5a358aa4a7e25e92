// The `lfs.url` of a repository's `.lfsconfig` read from the blob's bytes, as
// `git config --blob <blob> lfs.url` would read it, for the stream engine,
// which has the blob from a pack but no repository to run git in.
#pragma once

#include "snapshotter/util/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::lfs {

// A `.lfsconfig` larger than this is not read (git-lfs's are a few lines).
inline constexpr std::size_t k_max_lfsconfig_bytes = 64U << 10;

// The last `url` of the `[lfs]` section of the git config file `content`
// (section and key names case-insensitive, quotes, escapes, comments and
// continuation lines as git reads them; `[lfs "x"]` subsections are other
// sections; include directives are not followed, as git does not for a
// blob), or nullopt when it has none. Fails with Integrity on what git would
// refuse to parse, or on content over k_max_lfsconfig_bytes.
Result<std::optional<std::string>> lfs_url_in_config(std::string_view content);

} // namespace snapshotter::lfs
