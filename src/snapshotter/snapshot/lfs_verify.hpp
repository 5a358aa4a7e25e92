// verify's share of Git LFS (docs/lfs.md): every object a snapshot's set
// names is stored with its size (one listing of the repository's LFS area,
// shared by every snapshot of it that a run checks) and, with a drill, with
// its SHA-256 (each object read once per run).
#pragma once

#include "snapshotter/snapshot/manifest.hpp"
#include "snapshotter/storage/storage.hpp"

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// What checking one snapshot's LFS objects found.
struct LfsCheck {
    std::size_t objects = 0;           // objects checked
    std::uint64_t bytes = 0;           // their bytes
    std::vector<std::string> missing;  // oids absent from storage (and not recorded so), or of another size
    std::vector<std::string> corrupt;  // oids whose stored bytes have another SHA-256 (drill)
    std::size_t missing_upstream = 0;  // objects the snapshot recorded as not stored (purged upstream...)
    std::vector<std::string> problems; // one message per failure, for the snapshot's problems
    // Append the problems to `problems` and the counts to `total`; returns the
    // snapshot's "lfs" entry: {"objects", "bytes", "hashed", "missing",
    // "corrupt", "missing_upstream"}.
    nlohmann::json add_to(std::vector<std::string>& problems, LfsCheck& total, bool hashed) const;
};

// Whether a verifier reads every object to check its SHA-256.
enum class LfsHash { no, yes };

// Checks snapshots' LFS objects against one storage, remembering listings
// and hashes across the snapshots of a run.
class LfsVerifier {
  public:
    LfsVerifier(storage::Storage& storage, LfsHash hash) : m_storage(storage), m_hash(hash) {}

    // Check every object `manifest` needs (nothing without an `lfs` field).
    LfsCheck check(const Manifest& manifest);

  private:
    // Sizes of the objects stored under `name`'s LFS area, listed once.
    Result<const std::map<std::string, std::uint64_t>*> listing(const std::string& name);

    storage::Storage& m_storage;
    LfsHash m_hash;
    std::map<std::string, std::map<std::string, std::uint64_t>> m_listings; // repository -> key -> size
    std::map<std::string, bool> m_hashed;                                   // key -> SHA-256 matched
};

} // namespace snapshotter::snapshot
