// What the stream engine reads for Git LFS from a pack as it passes
// (docs/lfs.md, "Finding the pointers" and "Finding the server"): the
// pointers among its small blobs, the deltas of pointer size it could not
// apply, and, following HEAD's commit to its root tree, HEAD's `.lfsconfig`
// and `.gitattributes`; what that says about the LFS server, with the
// previous snapshot's record for what the pack does not hold.
#pragma once

#include "snapshotter/git/async_scan.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/snapshot/lfs_set.hpp"
#include "snapshotter/util/object_writer.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace snapshotter::snapshot {

// Trees larger than this are not read for HEAD's files (a root tree of about
// 20,000 entries); HEAD's `.lfsconfig` in one is then unknown.
inline constexpr std::uint64_t k_max_scanned_tree_bytes = 1U << 20;

// The files of a root tree the LFS step reads: their blob oids (hex; empty: none).
struct RootFiles {
    std::string lfsconfig;
    std::string gitattributes;
};

// The LFS pointers the stream engine finds in the pack as it streams: every
// blob of pointer size is parsed, and every delta the scanner could not apply
// whose result is of pointer size is counted, since a pointer may hide in it
// (a thin pack's delta on an object of an older snapshot). Constructed with
// HEAD's commit, it also follows that commit to its root tree and keeps the
// `.lfsconfig` and `.gitattributes` blobs there (a scanner of its own, which
// reports commits and trees, is needed for that: make_scanner()). Keep it
// alive and in place while the pack streams.
class LfsPackScan {
  public:
    LfsPackScan() = default;
    // Follow `head_commit` (hex; empty: HEAD names no commit).
    explicit LfsPackScan(std::string head_commit) : m_head(std::move(head_commit)), m_follow(true) {}
    LfsPackScan(const LfsPackScan&) = delete;
    LfsPackScan& operator=(const LfsPackScan&) = delete;

    // The callbacks to hand to the fetch's own scanner (blobs only).
    git::BlobScan hooks();
    // A scanner of its own for a pack in `object_format`: small blobs and,
    // when following HEAD, commits and trees up to k_max_scanned_tree_bytes.
    git::PackScanner make_scanner(const std::string& object_format);

    // What was found: the pointers, sorted and unique, and `unresolved`.
    [[nodiscard]] std::vector<LfsObject> pointers() const;
    [[nodiscard]] std::uint64_t unresolved() const { return m_unresolved; }
    // A small blob of the pack names filter=lfs (a .gitattributes, most likely).
    [[nodiscard]] bool attributes_seen() const { return m_attributes_seen; }

    // Following HEAD: its commit, whether the pack held it, its root tree,
    // whether the pack held that (readable), the files there, and the
    // content of a blob the pack held (nullopt: it did not, or it was larger
    // than a pointer).
    [[nodiscard]] bool follows_head() const { return m_follow; }
    [[nodiscard]] const std::string& head() const { return m_head; }
    [[nodiscard]] bool head_commit_seen() const { return m_head_seen; }
    [[nodiscard]] const std::string& head_tree() const { return m_head_tree; }
    [[nodiscard]] bool head_tree_seen() const { return m_tree_seen; }
    [[nodiscard]] const RootFiles& head_files() const { return m_files; }
    [[nodiscard]] std::optional<std::string> blob(const std::string& oid) const;

  private:
    Status on_blob(const git::ScannedBlob& blob);
    Status on_commit(const git::ScannedCommit& commit);
    Status on_tree(const git::ScannedTree& tree);
    void head_tree_found(const RootFiles& files);

    std::vector<LfsObject> m_pointers;
    std::uint64_t m_unresolved = 0;
    bool m_attributes_seen = false;
    std::string m_head;
    bool m_follow = false;
    bool m_head_seen = false;
    std::string m_head_tree;
    bool m_tree_seen = false;
    RootFiles m_files;
    std::string m_object_format = "sha1";
    // Trees with a .lfsconfig or .gitattributes seen before HEAD's commit
    // (git writes commits first; other servers may not), and whether any
    // other tree was, bounded.
    std::map<std::string, RootFiles> m_early_trees;
    std::size_t m_early_plain = 0;
    // Small blobs that may be HEAD's files (they mention "lfs"), bounded.
    std::map<std::string, std::string> m_candidates;
};

// An ObjectWriter in front of `inner` (null: the bytes are dropped) that
// feeds the pack after a bundle's header to `scanner` as the bytes pass, on
// a thread of its own (git/async_scan.hpp): the scanner's callbacks may be
// read only after finish_scan(), commit() or abort() returned.
class BundleScanTap final : public ObjectWriter {
  public:
    BundleScanTap(ObjectWriter* inner, git::PackScanner scanner)
        : m_inner(inner), m_scanner(std::move(scanner)) {}
    BundleScanTap(const BundleScanTap&) = delete;
    BundleScanTap& operator=(const BundleScanTap&) = delete;
    Status write(std::span<const std::byte> data) override;
    // Checks that the scanner saw a whole pack, then commits `inner`.
    Status commit() override;
    void abort() override;
    // Check that the scanner saw a whole pack (Integrity otherwise).
    Status finish_scan();

  private:
    ObjectWriter* m_inner;
    git::AsyncPackScanner m_scanner;
    bool m_in_header = true;
    bool m_line_start = false; // the last header byte was a newline
    bool m_finished = false;
};

// HEAD's .lfsconfig as a scan and the previous snapshot's record show it.
struct HeadLfsConfig {
    bool known = false;                    // false: `unknown` says why
    std::optional<std::string> url;        // lfs.url, when known (none: no .lfsconfig or no lfs.url)
    std::optional<LfsConfigRecord> record; // what the new snapshot records (the parent's when unknown)
    std::string unknown;                   // why it is not known
    std::string fetch_blob;                // unknown only for want of this blob's content: fetch it
    std::string warning;                   // a .lfsconfig git would not parse (then no url)
    bool gitattributes_lfs = false;        // HEAD's .gitattributes (when the pack held it) names filter=lfs
};

// What `scan` (following HEAD) and `parent` (the previous snapshot's record)
// say of HEAD's .lfsconfig. `fetched` is the content of `fetch_blob` when a
// first call asked for it and it was fetched.
HeadLfsConfig head_lfsconfig(const LfsPackScan& scan, const std::optional<LfsConfigRecord>& parent,
                             const std::optional<std::string>& fetched = std::nullopt);

// The regular files `.lfsconfig` and `.gitattributes` of the tree whose raw
// content is `content` (entries "<mode> <name>\0<raw oid>"); fails with
// Integrity on a malformed tree.
Result<RootFiles> root_files_of(std::string_view content, std::string_view object_format);

} // namespace snapshotter::snapshot
