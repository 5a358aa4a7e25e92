// Where a repository's Git LFS server is (git-lfs docs/api/server-discovery.md),
// and whether our credentials may go there.
#pragma once

#include "snapshotter/util/error.hpp"
#include "snapshotter/util/url.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::lfs {

// The LFS server git-lfs derives from clone URL `clone_url`: the URL with
// `.git` appended when its path lacks it, then `/info/lfs`. https and http
// URLs keep their scheme, host and port; ssh (`ssh://`, `user@host:path`)
// and git:// URLs map to `https://<host>/<path>` without user or port, as
// git-lfs does (it asks ssh servers through `git-lfs-authenticate` first;
// snapshotter does not, see docs/lfs.md). A query or fragment is dropped.
// file:// and local paths have no LFS server: NotFound.
Result<std::string> derive_lfs_url(std::string_view clone_url);

// Where an LFS URL came from, in the order that decides it.
enum class LfsUrlSource { payload, lfsconfig, derived };

// "payload" | "lfsconfig" | "derived".
std::string_view to_string(LfsUrlSource source);

// The LFS server a snapshot uses, and whether the repository's credentials go with it.
struct LfsServer {
    std::string url; // without a trailing '/'; /objects/batch is appended to it
    LfsUrlSource source = LfsUrlSource::derived;
    // True when the repository's credentials may be sent to `url`'s origin:
    // the payload named it, or it has the clone URL's origin. A .lfsconfig
    // (written by whoever can push) pointing elsewhere gets none.
    bool credentials = false;
};

// The server for a repository cloned from `clone_url`: `payload_url`
// (repositories[].lfs_url) wins, then `lfsconfig_url` (lfs.url of the
// .lfsconfig at the snapshot's HEAD), then derive_lfs_url(). A .lfsconfig URL
// must be http(s) with a host and no userinfo (http only when
// `policy.allow_http`); a bad one is a Payload error naming it, redacted.
Result<LfsServer> choose_lfs_server(std::string_view clone_url, const std::optional<std::string>& payload_url,
                                    const std::optional<std::string>& lfsconfig_url, TransportPolicy policy);

} // namespace snapshotter::lfs
