#include "snapshotter/snapshot/lfs_pack.hpp"

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/lfs/config.hpp"
#include "snapshotter/lfs/pointer.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace snapshotter::snapshot {

namespace {

// Bounds on what is kept while waiting for HEAD's commit or tree.
constexpr std::size_t k_max_early_trees = 1U << 17;
constexpr std::size_t k_max_candidates = 256;
// The longest lfs.url used (and recorded): lfs/discovery.cpp refuses longer ones.
constexpr std::size_t k_max_url = 2048;

bool mentions_lfs(std::string_view content) {
    // ASCII case folding by hand: `c | 0x20` is 'l' for 'l' and 'L' only (and
    // so for 'f' and 's'); std::tolower per byte was a fifth of a full scan's
    // CPU on a pack of small blobs (bench/README.md, round 29).
    auto is = [](char c, unsigned char lower) { return (static_cast<unsigned char>(c) | 0x20U) == lower; };
    for (std::size_t i = 0; i + 3 <= content.size(); ++i)
        if (is(content[i], 'l') && is(content[i + 1], 'f') && is(content[i + 2], 's'))
            return true;
    return false;
}

bool names_filter_lfs(std::string_view content) {
    return content.find("filter=lfs") != std::string_view::npos;
}

} // namespace

Result<RootFiles> root_files_of(std::string_view content, std::string_view object_format) {
    const std::size_t raw_len = git::oid_hex_length(object_format) / 2;
    RootFiles files;
    std::size_t pos = 0;
    while (pos < content.size()) {
        auto space = content.find(' ', pos);
        auto nul = space == std::string_view::npos ? space : content.find('\0', space);
        if (nul == std::string_view::npos || content.size() - nul - 1 < raw_len)
            return fail(Error::integrity("a tree entry is malformed"));
        const auto mode = content.substr(pos, space - pos);
        const auto name = content.substr(space + 1, nul - space - 1);
        const auto raw = content.substr(nul + 1, raw_len);
        // Regular files only: git-lfs reads neither a symbolic link nor a directory of that name.
        if (mode == "100644" || mode == "100755") {
            if (name == ".lfsconfig")
                files.lfsconfig = to_hex({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
            else if (name == ".gitattributes")
                files.gitattributes =
                    to_hex({reinterpret_cast<const unsigned char*>(raw.data()), raw.size()});
        }
        pos = nul + 1 + raw_len;
    }
    return files;
}

git::BlobScan LfsPackScan::hooks() {
    return git::BlobScan{.max_blob_size = lfs::k_max_pointer_bytes,
                         .on_blob = [this](const git::ScannedBlob& blob) { return on_blob(blob); },
                         .on_unresolved = [this](const git::UnresolvedDelta& delta) -> Status {
                             if (delta.result_size >= lfs::k_min_pointer_bytes &&
                                 delta.result_size <= lfs::k_max_pointer_bytes)
                                 ++m_unresolved;
                             return {};
                         }};
}

git::PackScanner LfsPackScan::make_scanner(const std::string& object_format) {
    m_object_format = object_format;
    auto blobs = hooks();
    git::PackScanCallbacks callbacks{.on_blob = blobs.on_blob, .on_unresolved = blobs.on_unresolved};
    if (m_follow) {
        callbacks.on_commit = [this](const git::ScannedCommit& c) { return on_commit(c); };
        callbacks.on_tree = [this](const git::ScannedTree& t) { return on_tree(t); };
        // HEAD's commit is all the commits are followed for, its root tree all
        // the trees are: git writes both first among their kind, so a full
        // pack's other commits and trees are neither hashed nor cached.
        callbacks.following = [this] {
            return git::PackFollow{.commits = !m_head.empty() && !m_head_seen,
                                   .trees = !m_head.empty() && !m_tree_seen};
        };
    }
    return git::PackScanner(git::PackScanOptions{.object_format = object_format,
                                                 .report_commits = m_follow,
                                                 .max_blob_size = blobs.max_blob_size,
                                                 .max_tree_size = m_follow ? k_max_scanned_tree_bytes : 0},
                            std::move(callbacks));
}

Status LfsPackScan::on_blob(const git::ScannedBlob& blob) {
    if (names_filter_lfs(blob.content))
        m_attributes_seen = true;
    if (m_follow && (blob.oid == m_files.lfsconfig || blob.oid == m_files.gitattributes ||
                     (m_candidates.size() < k_max_candidates && mentions_lfs(blob.content))))
        m_candidates.emplace(blob.oid, blob.content);
    if (blob.content.size() < lfs::k_min_pointer_bytes)
        return {};
    if (auto pointer = lfs::parse_pointer(blob.content))
        m_pointers.push_back({std::move(pointer->oid), pointer->size});
    return {};
}

Status LfsPackScan::on_commit(const git::ScannedCommit& commit) {
    if (m_head.empty() || commit.oid != m_head || m_head_seen)
        return {};
    m_head_seen = true;
    m_head_tree = commit.tree;
    if (auto it = m_early_trees.find(m_head_tree); it != m_early_trees.end())
        head_tree_found(it->second);
    m_early_trees.clear();
    return {};
}

Status LfsPackScan::on_tree(const git::ScannedTree& tree) {
    if (m_head.empty() || m_tree_seen)
        return {};
    if (m_head_seen && tree.oid != m_head_tree)
        return {};
    auto files = root_files_of(tree.content, m_object_format);
    if (!files)
        return {}; // a tree git would refuse; HEAD's files stay unknown unless its own is well formed
    if (m_head_seen) {
        head_tree_found(*files);
    } else if (!files->lfsconfig.empty() || !files->gitattributes.empty()) {
        if (m_early_trees.size() < k_max_early_trees)
            m_early_trees.emplace(tree.oid, std::move(*files));
    } else if (m_early_plain < k_max_early_trees) {
        // A tree without those files: remembered as such, so HEAD's may be known to have none.
        m_early_trees.emplace(tree.oid, RootFiles{});
        ++m_early_plain;
    }
    return {};
}

void LfsPackScan::head_tree_found(const RootFiles& files) {
    m_tree_seen = true;
    m_files = files;
}

std::vector<LfsObject> LfsPackScan::pointers() const {
    auto out = m_pointers;
    std::sort(out.begin(), out.end(), [](const LfsObject& a, const LfsObject& b) {
        return std::tie(a.oid, a.size) < std::tie(b.oid, b.size);
    });
    out.erase(std::unique(out.begin(), out.end(),
                          [](const LfsObject& a, const LfsObject& b) { return a.oid == b.oid; }),
              out.end());
    return out;
}

std::optional<std::string> LfsPackScan::blob(const std::string& oid) const {
    if (auto it = m_candidates.find(oid); it != m_candidates.end())
        return it->second;
    return std::nullopt;
}

Status BundleScanTap::write(std::span<const std::byte> data) {
    std::string_view bytes(reinterpret_cast<const char*>(data.data()), data.size());
    std::size_t pos = 0;
    // The bundle's header ends with an empty line; the pack follows.
    while (m_in_header && pos < bytes.size()) {
        const char c = bytes[pos++];
        if (c == '\n' && m_line_start)
            m_in_header = false;
        m_line_start = c == '\n';
    }
    if (pos < bytes.size())
        if (auto s = m_scanner.feed(bytes.substr(pos)); !s)
            return s;
    return m_inner != nullptr ? m_inner->write(data) : Status{};
}

Status BundleScanTap::finish_scan() {
    if (m_finished)
        return {};
    auto summary = m_scanner.finish();
    if (!summary)
        return fail(summary.error());
    m_finished = true;
    return {};
}

Status BundleScanTap::commit() {
    if (auto s = finish_scan(); !s) {
        abort();
        return s;
    }
    return m_inner != nullptr ? m_inner->commit() : Status{};
}

void BundleScanTap::abort() {
    m_scanner.cancel();
    if (m_inner != nullptr)
        m_inner->abort();
}

HeadLfsConfig head_lfsconfig(const LfsPackScan& scan, const std::optional<LfsConfigRecord>& parent,
                             const std::optional<std::string>& fetched) {
    HeadLfsConfig out;
    out.record = parent;
    if (scan.head().empty()) { // an unborn or absent HEAD: no .lfsconfig to read, nothing to record
        out.known = true;
        out.record = std::nullopt;
        return out;
    }
    // HEAD's commit or its root tree not in the pack: the parent's record answers for the
    // same commit (HEAD did not move), or for the same root tree (an empty commit).
    const bool commit_seen = scan.head_commit_seen();
    if (!commit_seen || !scan.head_tree_seen()) {
        if (parent && (commit_seen ? parent->tree == scan.head_tree() : parent->head == scan.head())) {
            out.known = true;
            out.url = parent->url;
            out.record = LfsConfigRecord{scan.head(), parent->tree, parent->blob, parent->url};
            return out;
        }
        out.unknown = commit_seen
                          ? fmt::format("HEAD's root tree {} is not readable in the pack (an older tree, "
                                        "a delta on an object outside the pack, or larger than {} bytes)",
                                        scan.head_tree(), k_max_scanned_tree_bytes)
                          : fmt::format("HEAD's commit {} is not in the pack and the previous snapshot "
                                        "recorded no .lfsconfig for it",
                                        scan.head());
        return out;
    }
    const RootFiles& files = scan.head_files();
    if (!files.gitattributes.empty())
        if (auto attributes = scan.blob(files.gitattributes))
            out.gitattributes_lfs = names_filter_lfs(*attributes);
    LfsConfigRecord record{scan.head(), scan.head_tree(), files.lfsconfig, std::nullopt};
    if (!files.lfsconfig.empty()) {
        auto content = scan.blob(files.lfsconfig);
        if (!content && fetched)
            content = fetched;
        if (!content) {
            if (parent && parent->blob == files.lfsconfig) {
                record.url = parent->url;
            } else {
                out.unknown = fmt::format("HEAD's .lfsconfig (blob {}) is not in the pack", files.lfsconfig);
                out.fetch_blob = files.lfsconfig;
                return out;
            }
        } else if (auto url = lfs::lfs_url_in_config(*content); url && *url && (*url)->size() > k_max_url) {
            out.warning =
                fmt::format("HEAD's .lfsconfig names an lfs.url of {} bytes, more than {}; it is not used",
                            (*url)->size(), k_max_url);
        } else if (url) {
            // Userinfo never makes a usable server (lfs/discovery.hpp): nothing secret is recorded.
            record.url = *url ? std::optional<std::string>(redact_url(**url)) : std::nullopt;
        } else {
            out.warning = fmt::format("HEAD's .lfsconfig is not read: {}", url.error().message);
        }
    }
    out.known = true;
    out.url = record.url;
    out.record = std::move(record);
    return out;
}

} // namespace snapshotter::snapshot
