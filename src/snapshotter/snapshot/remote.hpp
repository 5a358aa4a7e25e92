// How snapshotter reaches a repository of the payload: the one place where
// a job::Repository and the options become git's view of a remote.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/transport.hpp"
#include "snapshotter/job/job.hpp"

namespace snapshotter::snapshot {

// A remote as both of git's ways reach it, built together so that a setting
// cannot reach one and miss the other.
struct RemoteAccess {
    git::Remote remote;              // for git commands: the cli engine, restore's push_to
    git::TransportOptions transport; // for the protocol client: the stream engine; its timeout is per call
};

// `repo` as git reaches it: its URL, the transports and redirects `options`
// allow, ssh host-key checking, and the credentials read from the
// environment variables it names (registered as secrets); the protocol client
// shares `capabilities` (may be null) with the job's other repositories.
RemoteAccess remote_access(const job::Repository& repo, const job::Options& options,
                           git::CapabilityMemo* capabilities = nullptr);

} // namespace snapshotter::snapshot
