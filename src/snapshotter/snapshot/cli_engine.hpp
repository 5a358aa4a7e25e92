// The git-CLI engine: the remote's refs are listed in-process with one
// protocol v2 ls-refs (git:// and http(s)://; the stream engine's listing) or
// by `git ls-remote` (ssh, file, servers without v2); `git fetch`
// updates a cached mirror (options.cache_dir/mirrors, one writer at a time),
// and `git bundle create` (full, or incremental against the parent's tips)
// streams the bundle into storage. Old tips stay in the mirror as
// refs/snapshotter/preserved/ refs, so later full bundles carry them. Every
// object read between the fetch and the bundle (ancestry, the old tips'
// types, the Git LFS scan) goes through one `git cat-file` session
// (git/cat_file.hpp), closed before the bundle is made.
#pragma once

#include "snapshotter/snapshot/engine.hpp"

#include <memory>

namespace snapshotter::snapshot {

// How the cli engine lists the remote's refs.
enum class CliListing {
    in_process_first, // protocol v2 ls-refs for git:// and http(s)://, git ls-remote otherwise or when
                      // refused
    git_only,         // git ls-remote (the stream engine's listing was refused already)
};

// The git-CLI engine for `ec` (which must outlive it).
std::unique_ptr<Engine> make_cli_engine(const EngineContext& ec,
                                        CliListing listing = CliListing::in_process_first);

} // namespace snapshotter::snapshot
