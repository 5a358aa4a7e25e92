#include "snapshotter/git/stream.hpp"

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/util/redact.hpp"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <optional>
#include <set>

namespace snapshotter::git {
namespace {

// A shallow upstream's pack lacks the history behind its cut: no restore could use it.
Status refuse_shallow(const ProtocolClient& client, const StreamRequest& request,
                      const FetchResult& fetched) {
    if (fetched.shallow.empty() || request.allow_shallow)
        return {};
    return fail(Error::git(fmt::format("{}: {} (it sent {} shallow boundary commit(s), e.g. {}); "
                                       "its history is incomplete, so no snapshot of it could restore",
                                       client.describe(), k_shallow_upstream, fetched.shallow.size(),
                                       fetched.shallow.front())));
}

// Verify the pack `writer` passed, close the session and record the bundle in `result`.
Status finish_bundle(ProtocolClient& client, BundleWriter& writer, const FetchResult& fetched,
                     StreamResult& result) {
    // The pack is verified before the session is closed, so a bad pack is what gets reported.
    auto summary = writer.finish();
    if (!summary)
        return fail(summary.error().with_context(fmt::format("pack from {}", client.describe())));
    if (auto s = client.close(); !s)
        return s;
    result.pack_written = true;
    result.object_count = summary->object_count;
    result.pack_size = summary->pack_size;
    result.bundle_size = summary->bundle_size;
    result.sha256 = summary->sha256;
    result.shallow = fetched.shallow;
    return {};
}

// The walk anchor of a full snapshot: the first commit of the pack that is
// one of `tips`, with its parents (git writes a pack's commits first, newest
// first, so that is usually its first object). It reads at most
// k_max_bytes of the pack and k_max_commits commits, then stops; a pack it
// cannot read just leaves no anchor (BundleWriter checks the pack).
class AnchorScan {
  public:
    static constexpr std::size_t k_max_bytes = std::size_t{1} << 20;
    static constexpr std::size_t k_max_commits = 256;

    AnchorScan(const std::string& object_format, std::set<std::string> tips)
        : m_tips(std::move(tips)),
          m_scanner(PackScanOptions{.object_format = object_format,
                                    .cache_bytes = k_max_bytes,
                                    .max_known = k_max_commits},
                    PackScanCallbacks{.on_commit = [this](const ScannedCommit& c) { return on_commit(c); }}) {
    }

    void feed(std::string_view data) {
        if (m_done)
            return;
        m_fed += data.size();
        m_done = !m_scanner.feed(data) || m_fed >= k_max_bytes;
    }

    [[nodiscard]] const std::optional<WalkAnchor>& anchor() const { return m_anchor; }

  private:
    // Fails to stop the scan once an anchor is found or the commits run out.
    Status on_commit(const ScannedCommit& commit) {
        if (m_tips.contains(commit.oid) && commit.parents.size() <= k_max_anchor_parents)
            m_anchor = WalkAnchor{commit.oid, commit.parents};
        if (m_anchor || ++m_commits >= k_max_commits)
            return fail(Error::internal("anchor scan done"));
        return {};
    }

    std::set<std::string> m_tips;
    PackScanner m_scanner;
    std::optional<WalkAnchor> m_anchor;
    std::size_t m_fed = 0;
    std::size_t m_commits = 0;
    bool m_done = false;
};

// Step 2: header, then the fetched pack streamed through the bundle writer into `out`.
Status fetch_into_bundle(ProtocolClient& client, const StreamRequest& request, const BundleHeader& header,
                         const FetchRequest& fetch, ObjectWriter& out, StreamResult& result,
                         const BlobScan& blobs) {
    BundleWriter writer([&out](std::span<const std::byte> data) { return out.write(data); });
    AnchorScan anchor_scan(header.object_format,
                           std::set<std::string>(fetch.wants.begin(), fetch.wants.end()));
    if (auto s = writer.write_header(header); !s)
        return s;
    std::optional<PackScanner> scanner;
    if (blobs.on_blob)
        scanner.emplace(PackScanOptions{.object_format = header.object_format,
                                        .report_commits = false,
                                        .max_blob_size = blobs.max_blob_size},
                        PackScanCallbacks{.on_blob = blobs.on_blob, .on_unresolved = blobs.on_unresolved});
    auto fetched = client.fetch(
        fetch,
        [&writer, &scanner, &anchor_scan](std::string_view data) -> Status {
            anchor_scan.feed(data);
            if (scanner)
                if (auto s = scanner->feed(data); !s)
                    return s;
            return writer.write_pack(data);
        },
        request.on_progress);
    if (!fetched)
        return fail(fetched.error());
    if (scanner)
        if (auto scanned = scanner->finish(); !scanned)
            return fail(scanned.error().with_context(fmt::format("pack from {}", client.describe())));
    if (auto s = refuse_shallow(client, request, *fetched); !s)
        return s;
    if (auto s = finish_bundle(client, writer, *fetched, result); !s)
        return s;
    result.next_anchor = anchor_scan.anchor();
    return {};
}

// Pack bytes held back until the header can be written: in memory up to
// k_memory, then in an anonymous temporary file (gone when closed).
class PackSpool {
  public:
    static constexpr std::size_t k_memory = 8U << 20;
    PackSpool() = default;
    ~PackSpool() {
        if (m_file != nullptr)
            std::fclose(m_file);
    }
    PackSpool(const PackSpool&) = delete;
    PackSpool& operator=(const PackSpool&) = delete;

    Status write(std::string_view data) {
        if (m_file == nullptr && m_memory.size() + data.size() <= k_memory) {
            m_memory.append(data);
            return {};
        }
        if (m_file == nullptr) {
            m_file = std::tmpfile();
            if (m_file == nullptr)
                return fail(Error::internal("cannot create a temporary file for the pack"));
        }
        if (std::fwrite(data.data(), 1, data.size(), m_file) != data.size())
            return fail(Error::internal("cannot write the pack's temporary file"));
        return {};
    }

    // Pass everything written, in order, to `sink`.
    Status replay(const std::function<Status(std::string_view)>& sink) {
        if (auto s = sink(m_memory); !s)
            return s;
        if (m_file == nullptr)
            return {};
        if (std::fflush(m_file) != 0 || std::fseek(m_file, 0, SEEK_SET) != 0)
            return fail(Error::internal("cannot read back the pack's temporary file"));
        std::string buffer(1U << 16, '\0');
        while (true) {
            std::size_t n = std::fread(buffer.data(), 1, buffer.size(), m_file);
            if (n > 0)
                if (auto s = sink(std::string_view(buffer.data(), n)); !s)
                    return s;
            if (n < buffer.size())
                return std::ferror(m_file) != 0
                           ? fail(Error::internal("cannot read the pack's temporary file"))
                           : Status{};
        }
    }

  private:
    std::string m_memory;
    std::FILE* m_file = nullptr;
};

// The parents of `commits` that are not among them (a shallow boundary's excepted).
std::vector<std::string>
pack_prerequisites(const std::unordered_map<std::string, std::vector<std::string>>& commits,
                   const std::vector<std::string>& shallow) {
    std::set<std::string> out;
    const std::set<std::string> cut(shallow.begin(), shallow.end());
    for (const auto& [oid, parents] : commits) {
        if (cut.contains(oid))
            continue;
        for (const auto& parent : parents)
            if (!commits.contains(parent))
                out.insert(parent);
    }
    return {out.begin(), out.end()};
}

// Step 2 of an incremental: the pack held back and scanned, then the header
// with the prerequisites it needs, then the pack, into `out`. A negotiation
// round (`fetch.done` false) the server answered without a pack returns false
// with its acknowledgments in `acknowledgments`, having written nothing.
Result<bool> fetch_spooled_into_bundle(ProtocolClient& client, const StreamRequest& request,
                                       BundleHeader header, const FetchRequest& fetch, ObjectWriter& out,
                                       StreamResult& result, const PackObserver& on_pack,
                                       const BlobScan& blobs, std::vector<std::string>& acknowledgments) {
    PackSpool spool;
    PackScanner scanner(PackScanOptions{.object_format = header.object_format,
                                        .max_blob_size = blobs.on_blob ? blobs.max_blob_size : 0},
                        PackScanCallbacks{.on_commit = [&result](const ScannedCommit& c) -> Status {
                                              result.pack_commits[c.oid] = c.parents;
                                              return {};
                                          },
                                          .on_blob = blobs.on_blob,
                                          .on_unresolved = blobs.on_unresolved});
    auto fetched = client.fetch(
        fetch,
        [&](std::string_view data) -> Status {
            if (on_pack)
                if (auto s = on_pack(data); !s)
                    return s;
            if (auto s = scanner.feed(data); !s)
                return s;
            return spool.write(data);
        },
        request.on_progress);
    if (!fetched)
        return fail(fetched.error());
    if (!fetched->pack_received) {
        acknowledgments = std::move(fetched->acknowledgments);
        return false;
    }
    // The walk anchor we declared, if a server names it back, is no boundary of
    // its history: we hold the anchor's parents (WalkAnchor).
    std::erase_if(fetched->shallow, [&fetch](const std::string& oid) {
        return std::find(fetch.shallow.begin(), fetch.shallow.end(), oid) != fetch.shallow.end();
    });
    if (auto s = refuse_shallow(client, request, *fetched); !s)
        return fail(s.error());
    if (auto scanned = scanner.finish(); !scanned)
        return fail(scanned.error().with_context(fmt::format("pack from {}", client.describe())));
    header.prerequisites = pack_prerequisites(result.pack_commits, fetched->shallow);
    BundleWriter writer([&out](std::span<const std::byte> data) { return out.write(data); });
    if (auto s = writer.write_header(header); !s)
        return fail(s.error());
    if (auto s = spool.replay([&writer](std::string_view data) { return writer.write_pack(data); }); !s)
        return fail(s.error());
    result.prerequisites = header.prerequisites;
    if (auto s = finish_bundle(client, writer, *fetched, result); !s)
        return fail(s.error());
    return true;
}

// Whether `refname` can be trusted to peel to a commit. Git requires bundle
// prerequisites to be commits, and ls-refs does not say object types: a tag
// may point at a tree or a blob (git.git, linux do this), a replace ref at
// anything. Branches, notes, pull and remote refs always hold commits.
bool points_at_commit(std::string_view refname) {
    return !refname.starts_with("refs/tags/") && !refname.starts_with("refs/replace/");
}

// The header lines of `refs`; with `previous`, only of those created or moved since.
std::vector<std::pair<std::string, std::string>> header_refs(const RefMap& refs,
                                                             const RefMap* previous = nullptr) {
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(refs.size());
    for (const auto& [name, target] : refs) {
        if (previous != nullptr)
            if (auto it = previous->find(name); it != previous->end() && it->second.oid == target.oid)
                continue;
        out.emplace_back(target.oid, name);
    }
    return out;
}

// The oid of a detached HEAD, which the bundle must carry (as k_head_ref)
// even when no selected ref reaches it; empty for any other HEAD.
std::string detached_head_oid(const StreamResult& listed) {
    return listed.head_state.kind == HeadKind::detached ? listed.head_state.target : std::string{};
}

} // namespace

bool valid_walk_anchor(const WalkAnchor& anchor, std::string_view object_format) {
    if (!is_valid_oid(anchor.commit, object_format) || anchor.parents.size() > k_max_anchor_parents)
        return false;
    return std::all_of(anchor.parents.begin(), anchor.parents.end(), [&](const std::string& parent) {
        return is_valid_oid(parent, object_format) && parent != anchor.commit;
    });
}

std::vector<std::string> anchored_haves(const std::vector<std::string>& haves, const WalkAnchor& anchor) {
    std::vector<std::string> out;
    out.reserve(haves.size() + anchor.parents.size() + 1);
    std::set<std::string> placed;
    for (const auto& parent : anchor.parents)
        if (placed.insert(parent).second)
            out.push_back(parent);
    placed.insert(anchor.commit);
    for (const auto& have : haves)
        if (placed.insert(have).second)
            out.push_back(have);
    out.push_back(anchor.commit);
    return out;
}

bool takes_walk_anchor(const ServerCapabilities& caps) {
    return caps.fetch_supports("shallow") && caps.agent.starts_with("git/");
}

std::optional<WalkAnchor>
choose_walk_anchor(const std::vector<std::string>& wants,
                   const std::unordered_map<std::string, std::vector<std::string>>& pack_commits) {
    for (const auto& oid : wants)
        if (auto it = pack_commits.find(oid);
            it != pack_commits.end() && it->second.size() <= k_max_anchor_parents)
            return WalkAnchor{oid, it->second};
    return std::nullopt;
}

IncrementalPlan plan_incremental(const RefMap& previous, const RefMap& current) {
    IncrementalPlan plan;
    plan.unchanged = previous == current;
    std::set<std::string> known, prerequisites, wants;
    for (const auto& [name, target] : previous) {
        known.insert(target.oid);
        if (!target.peeled.empty())
            known.insert(target.peeled);
        if (points_at_commit(name))
            prerequisites.insert(target.peeled.empty() ? target.oid : target.peeled);
    }
    for (const auto& [name, target] : current)
        if (!known.contains(target.oid))
            wants.insert(target.oid);
    plan.wants.assign(wants.begin(), wants.end());
    plan.haves.assign(known.begin(), known.end());
    plan.prerequisites.assign(prerequisites.begin(), prerequisites.end());
    return plan;
}

std::vector<std::string> lost_tips(const RefMap& previous, const RefMap& current,
                                   const std::vector<std::string>& common) {
    std::set<std::string> out;
    for (const auto& [name, target] : current) {
        auto it = previous.find(name);
        if (it == previous.end() || it->second.oid == target.oid || !points_at_commit(name))
            continue;
        const auto& tip = it->second.peeled.empty() ? it->second.oid : it->second.peeled;
        if (!std::binary_search(common.begin(), common.end(), tip))
            out.insert(tip);
    }
    return {out.begin(), out.end()};
}

Result<ListedRemote> ListedRemote::open(const StreamRequest& request) {
    auto client = ProtocolClient::open(request.transport);
    if (!client)
        return fail(client.error());
    return open(request, std::move(*client));
}

Result<ListedRemote> ListedRemote::open(const StreamRequest& request, ProtocolClient opened) {
    auto client = std::optional<ProtocolClient>(std::move(opened));
    auto listed = client->ls_refs(ref_prefixes_for(request.patterns), request.max_refs);
    if (!listed)
        return fail(listed.error());
    StreamResult result;
    // Names git or a file system could not store are refused before anything is fetched.
    auto screened =
        screen_refs(request.patterns.empty() ? listed->refs : select_refs(listed->refs, request.patterns),
                    client->describe());
    if (!screened)
        return fail(screened.error());
    result.refs = std::move(screened->kept);
    result.refused = std::move(screened->refused);
    result.head_state = classify_head(listed->head, listed->head_oid);
    if (result.head_state.kind == HeadKind::symbolic || result.head_state.kind == HeadKind::unborn)
        result.head = result.head_state.target;
    result.object_format = client->capabilities().object_format;
    return ListedRemote(request, std::move(*client), std::move(result));
}

Status ListedRemote::close() {
    return m_client.close();
}

Result<StreamResult> ListedRemote::full_bundle(ObjectWriter& out, const BlobScan& blobs) {
    StreamResult result = m_result;
    if (result.refs.empty()) {
        (void)m_client.close();
        return result;
    }
    // Want every distinct tip; annotated tags by their tag object so the tag comes along.
    std::set<std::string> wants;
    for (const auto& [name, target] : result.refs)
        wants.insert(target.oid);
    BundleHeader header{.object_format = result.object_format, .refs = header_refs(result.refs)};
    if (auto head = detached_head_oid(result); !head.empty()) {
        wants.insert(head);
        header.refs.emplace_back(head, k_head_ref);
    }
    result.wants.assign(wants.begin(), wants.end());
    // Stream header and pack into the bundle.
    FetchRequest fetch{.wants = result.wants,
                       .thin_pack = false,
                       .progress = static_cast<bool>(m_request.on_progress),
                       .max_pack_bytes = m_request.max_pack_bytes};
    if (auto s = fetch_into_bundle(m_client, m_request, header, fetch, out, result, blobs); !s)
        return fail(s.error());
    return result;
}

Result<StreamResult> ListedRemote::incremental_bundle(const RefMap& previous, ObjectWriter& out,
                                                      const std::string& previous_head_oid,
                                                      const IncrementalExtras& extras) {
    StreamResult result = m_result;
    for (const auto& [name, target] : previous)
        if (!is_valid_oid(target.oid, result.object_format))
            return fail(Error::payload(
                fmt::format("previous snapshot's {} is not a {} object id", name, result.object_format)));
    IncrementalPlan plan = plan_incremental(previous, result.refs);
    result.unchanged = plan.unchanged;
    // A detached HEAD on an object the chain does not hold comes along too.
    auto head = detached_head_oid(result);
    const bool fetch_head = !head.empty() && head != previous_head_oid &&
                            !std::binary_search(plan.haves.begin(), plan.haves.end(), head) &&
                            !std::binary_search(plan.wants.begin(), plan.wants.end(), head);
    if (fetch_head)
        plan.wants.insert(std::lower_bound(plan.wants.begin(), plan.wants.end(), head), head);
    // Refs-only changes (deletions, rewinds, new refs on known commits) need no pack.
    if (plan.wants.empty()) {
        (void)m_client.close();
        return result;
    }
    result.wants = plan.wants;
    // Older tips of the chain are haves too: a server that lost a previous tip still finds them.
    for (const auto& oid : extras.haves)
        if (is_valid_oid(oid, result.object_format))
            plan.haves.push_back(oid);
    std::sort(plan.haves.begin(), plan.haves.end());
    plan.haves.erase(std::unique(plan.haves.begin(), plan.haves.end()), plan.haves.end());
    // The walk anchor: its shallow line turns the server's bitmap off, and it
    // and its parents as haves leave the server's walk as it was (WalkAnchor).
    std::vector<std::string> shallow;
    if (extras.anchor && valid_walk_anchor(*extras.anchor, result.object_format) &&
        takes_walk_anchor(m_client.capabilities())) {
        shallow.push_back(extras.anchor->commit);
        plan.haves = anchored_haves(plan.haves, *extras.anchor);
        result.anchor_sent = true;
    }
    // Stream header (prerequisites + the refs created or moved) and the thin pack.
    BundleHeader header{.object_format = result.object_format, .refs = header_refs(result.refs, &previous)};
    if (fetch_head)
        header.refs.emplace_back(head, k_head_ref);
    FetchRequest fetch{.wants = plan.wants,
                       .haves = plan.haves,
                       .thin_pack = extras.thin_pack,
                       .progress = static_cast<bool>(m_request.on_progress),
                       .max_pack_bytes = m_request.max_pack_bytes,
                       .done = !extras.more_haves,
                       .wait_for_done = true,
                       .shallow = std::move(shallow)};
    // Negotiate (see the top of stream.hpp): each round offers every have so
    // far; a "ready" server sends the pack at once, the last round says "done".
    for (int round = 1;; ++round) {
        std::vector<std::string> acknowledgments;
        auto sent = fetch_spooled_into_bundle(m_client, m_request, header, fetch, out, result, extras.on_pack,
                                              extras.blobs, acknowledgments);
        if (!sent)
            return fail(sent.error());
        result.negotiation_rounds = round;
        if (*sent) {
            result.next_anchor = choose_walk_anchor(plan.wants, result.pack_commits);
            return result;
        }
        auto acked = parse_acknowledgments(acknowledgments, fetch.haves, result.object_format);
        if (!acked)
            return fail(acked.error().with_context(fmt::format("fetch from {}", m_client.describe())));
        result.lost = lost_tips(previous, result.refs, acked->common);
        std::vector<std::string> more;
        if (!result.lost.empty())
            more = extras.more_haves(result.lost, round);
        std::set<std::string> offered(fetch.haves.begin(), fetch.haves.end());
        std::size_t added = 0;
        for (auto& oid : more)
            if (result.more_haves < k_max_more_haves && is_valid_oid(oid, result.object_format) &&
                offered.insert(oid).second) {
                fetch.haves.push_back(std::move(oid));
                ++result.more_haves;
                ++added;
            }
        // Nothing new to offer, or the last round: "done" makes the server send its pack.
        fetch.done = added == 0 || round + 1 >= k_max_negotiation_rounds;
    }
}

Result<StreamResult> list_remote(const StreamRequest& request) {
    auto listed = ListedRemote::open(request);
    if (!listed)
        return fail(listed.error());
    if (auto s = listed->close(); !s)
        return fail(s.error());
    return listed->listing();
}

Result<StreamResult> stream_full_bundle(const StreamRequest& request, ObjectWriter& out,
                                        const BlobScan& blobs) {
    auto listed = ListedRemote::open(request);
    if (!listed)
        return fail(listed.error());
    return listed->full_bundle(out, blobs);
}

Result<StreamResult> stream_incremental_bundle(const StreamRequest& request, const RefMap& previous,
                                               ObjectWriter& out, const std::string& previous_head_oid,
                                               const IncrementalExtras& extras) {
    auto listed = ListedRemote::open(request);
    if (!listed)
        return fail(listed.error());
    return listed->incremental_bundle(previous, out, previous_head_oid, extras);
}

Result<bool> remote_speaks_v2(const TransportOptions& options) {
    auto caps = probe_server(options);
    if (!caps)
        return fail(caps.error());
    return caps->version == 2;
}

} // namespace snapshotter::git
