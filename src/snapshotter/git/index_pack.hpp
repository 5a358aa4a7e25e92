// Snapshot-time verification of a streamed bundle by git itself: the pack
// part of the bundle is piped, as it is written to storage, into
// `git index-pack --stdin --fix-thin` running in a local repository that
// holds the bundle's prerequisites. index-pack inflates every object,
// checks every object id and resolves every delta (completing a thin pack
// from the repository), so a pack that git could not fetch from the bundle
// at restore time fails here, before its manifest is committed.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/util/child.hpp"
#include "snapshotter/util/error.hpp"

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

namespace snapshotter::git {

class PackIndexer {
  public:
    // Start index-pack in the repository at `repo`, which must already hold
    // every object the pack may refer to without carrying it.
    static Result<PackIndexer> start(const GitApi& git, const std::filesystem::path& repo,
                                     std::chrono::milliseconds timeout);

    // Feed the next bytes of the bundle: the header (up to and including its
    // empty line) is skipped, everything after it goes to index-pack.
    Status feed(std::span<const std::byte> bundle_bytes);

    // Close the pack and wait for index-pack; returns the pack's checksum as
    // index-pack printed it. IntegrityError with git's message when the pack
    // was rejected; nothing fed at all is an IntegrityError too.
    Result<std::string> finish();

    // Stop index-pack (the snapshot failed elsewhere); idempotent.
    void cancel();

  private:
    explicit PackIndexer(Child child) : m_child(std::move(child)) {}

    std::optional<Child> m_child;
    bool m_in_header = true;
    bool m_at_line_start = true; // the previous header byte ended a line
    std::size_t m_pack_bytes = 0;
    std::optional<Error> m_failed; // index-pack stopped reading
};

} // namespace snapshotter::git
