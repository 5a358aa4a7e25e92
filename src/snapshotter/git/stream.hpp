// The streaming engine: snapshots of a remote repository written as bundles
// straight from a protocol v2 fetch, with no local clone. A full bundle holds
// every selected ref and the server's pack; an incremental one sends the
// previous snapshot's tips as haves, wants only the changed tips, and lists
// the parents its pack needs as the bundle's prerequisites.
//
// Haves negotiation of an incremental (docs/streaming-engine.md, "Haves"): with
// IncrementalExtras::more_haves set, the first fetch is a negotiation round
// without "done" and with "wait-for-done" (when the server advertises it), so
// that the server answers with every have it has rather than a pack built on
// whatever common commit it found first. The previous tips of moved refs it
// did not acknowledge are "lost" (a branch was reset and the server pruned
// its old tip); more_haves is asked for further commits of the chain to offer
// (older tips of earlier snapshots, spaced first-parent ancestors of the lost
// tips read from the chain's bundles), and the next round says "done". With
// nothing lost, the second round is the usual want/have/done (one more round
// trip than before, the price of knowing). A server without wait-for-done may
// answer "ready" with the pack at once; that pack is taken. Every round carries
// all haves (protocol v2 is stateless; over HTTP each round is a new request),
// and at most k_max_negotiation_rounds rounds are made.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/pack_scan.hpp"
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/git/protocol.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/object_writer.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace snapshotter::git {

// What to snapshot and how to reach it.
struct StreamRequest {
    TransportOptions transport;                                       // URL, policy, credentials, timeout
    std::vector<std::string> patterns{"refs/heads/*", "refs/tags/*"}; // refs to keep (git::ref_matches)
    BandSink on_progress;             // server progress text; empty: none asked
    std::size_t max_refs = 0;         // more refs advertised stop the run (a Git error); 0: no limit
    std::uint64_t max_pack_bytes = 0; // a larger pack stops the run (a Git error); 0: no limit
    bool allow_shallow = false;       // false: a shallow upstream stops the run (a Git error)
};

// Rounds of one negotiation, the last one sending "done".
inline constexpr int k_max_negotiation_rounds = 2;
// Haves more_haves may add over all rounds; more are dropped.
inline constexpr std::size_t k_max_more_haves = 1024;

// A commit the chain holds, with its parents, that lets an incremental steer
// git's upload-pack off its reachability bitmap (docs/streaming-engine.md,
// "Walking, not bitmaps"). git 2.39's pack-objects, when it counts objects
// with a bitmap, ignores a thin pack's preferred bases: each tree a night
// changed goes whole, and a directory that grows makes every night larger.
// A fetch that declares any commit shallow makes upload-pack count by
// walking (pack-objects turns bitmaps off for a shallow receiver), and then
// the new trees go as deltas on the haves' trees. Declaring `commit` shallow
// cuts it from its parents in the server's walk; sending it and all its
// `parents` as haves (the parents first: anchored_haves()) gives the walk
// back everything the cut removed, so the pack holds what it would hold
// without the line. A server that no longer has `commit` ignores the line
// (git does), and the fetch is as before. The cut can only make the server
// send more, never less: what it counts as ours is still only what we hold.
struct WalkAnchor {
    std::string commit;
    std::vector<std::string> parents; // at most k_max_anchor_parents
    bool operator==(const WalkAnchor&) const = default;
};

// Parents a walk anchor may have (an octopus merge with more is not chosen).
inline constexpr std::size_t k_max_anchor_parents = 8;

// Whether `anchor` is well-formed for `object_format`: a commit oid and at
// most k_max_anchor_parents parent oids, none equal to the commit.
bool valid_walk_anchor(const WalkAnchor& anchor, std::string_view object_format);

// `haves` (without duplicates) with the anchor's parents first and the
// anchor last, in the order a fetch must send them. git's upload-pack reads
// haves in order and keeps a commit for pack-objects only when no have read
// before it named it as a parent (it is reachable from that one); pack-objects
// then cuts the anchor from its parents, so a parent kept out because of the
// anchor would be reachable from no have and sent again. Read first, every
// parent is kept, or kept out by another have whose parents are not cut.
std::vector<std::string> anchored_haves(const std::vector<std::string>& haves, const WalkAnchor& anchor);

// Whether a server may be sent a walk anchor: it advertises fetch=shallow and
// its agent is git's ("git/...": git, and the hosts that serve with it), whose
// pack-objects is what the anchor steers. Other servers get no shallow line.
bool takes_walk_anchor(const ServerCapabilities& caps);

// The next walk anchor from an incremental's pack: the first of `wants`
// (sorted) that is a commit of the pack with at most k_max_anchor_parents
// parents; nullopt when there is none (a pack of tags only).
std::optional<WalkAnchor>
choose_walk_anchor(const std::vector<std::string>& wants,
                   const std::unordered_map<std::string, std::vector<std::string>>& pack_commits);

// What a stream run found and wrote.
struct StreamResult {
    RefMap refs; // the selected refs on the server now (the manifest's ref map)
    std::map<std::string, std::string> refused; // selected names not stored, with why (git/refname.hpp)
    std::optional<std::string> head;            // the ref HEAD points at, when the server said
    HeadState head_state;                       // what HEAD is (git/refname.hpp)
    std::string object_format;                  // "sha1" or "sha256"
    bool pack_written = false;                  // a bundle went to the writer; false: nothing was written
    bool unchanged = false;                     // incremental only: the ref map equals the previous one
    std::vector<std::string> wants;             // the oids fetched
    std::vector<std::string> prerequisites;     // incremental only: the bundle's "-<oid>" lines
    std::uint64_t object_count = 0;             // from the pack header
    std::uint64_t pack_size = 0;                // bytes of pack
    std::uint64_t bundle_size = 0;              // bytes written to the writer
    std::string sha256;                         // hex SHA-256 of those bytes
    std::vector<std::string> shallow;           // "shallow" oids the server sent: it is a shallow repository
    // Incremental only: every commit of the pack with its parents (git/pack_scan.hpp).
    std::unordered_map<std::string, std::vector<std::string>> pack_commits;
    int negotiation_rounds = 0;    // incremental only: fetch requests made (1 without negotiation)
    std::size_t more_haves = 0;    // incremental only: haves IncrementalExtras::more_haves added
    std::vector<std::string> lost; // incremental only: previous tips of moved refs the server lacked
    bool anchor_sent = false;      // incremental only: IncrementalExtras::anchor went to the server
    // The next walk anchor: choose_walk_anchor() of an incremental's pack; of a
    // full one, the first commit of its pack that is a wanted tip, within its
    // first MiB and 256 commits (git writes the newest commits first).
    std::optional<WalkAnchor> next_anchor;
};

// Sees every pack byte of a fetch as it passes; an error stops the run.
using PackObserver = std::function<Status(std::string_view)>;

// Small blobs of the pack reported as it streams (git/pack_scan.hpp), e.g.
// for Git LFS pointers; `on_blob` empty: not asked (nothing more is inflated).
struct BlobScan {
    std::uint64_t max_blob_size = 0;                             // report blobs up to this size
    std::function<Status(const ScannedBlob&)> on_blob;           // each small blob
    std::function<Status(const UnresolvedDelta&)> on_unresolved; // deltas it could not apply
};

// Further haves for the next negotiation round, given the `lost` tips (the
// previous tips of moved refs the server did not acknowledge, sorted) and the
// number of the round that just ended (1, 2, ...); empty: nothing more to offer.
// Only commits the chain holds may be returned (their whole history is in it).
using MoreHaves = std::function<std::vector<std::string>(const std::vector<std::string>& lost, int round)>;

// What an incremental may add to its plan.
struct IncrementalExtras {
    std::vector<std::string> haves;   // more oids the chain holds (older tips), sent as haves only
    PackObserver on_pack;             // sees the pack as it passes (git/pack_scan.hpp); empty: none
    bool thin_pack = true;            // false: ask for a pack without deltas on objects it lacks
    BlobScan blobs;                   // small blobs to report while the pack is scanned
    MoreHaves more_haves;             // set: negotiate in rounds (see the top); empty: one round with "done"
    std::optional<WalkAnchor> anchor; // a commit the chain holds (WalkAnchor); sent when the server takes it
};

// The wants, haves and prerequisites of an incremental from `previous` to `current`.
struct IncrementalPlan {
    std::vector<std::string> wants; // oids of `current` absent from `previous` (oid or peeled), sorted
    std::vector<std::string> haves; // every oid and peeled oid of `previous`, sorted
    std::vector<std::string> prerequisites; // peeled tips of `previous` that must be commits (refs outside
                                            // refs/tags/ and refs/replace/), sorted; tags are haves only
    bool unchanged = false;                 // `current` equals `previous`
};

// Work out what an incremental must fetch; no pack is needed when `wants` is empty.
IncrementalPlan plan_incremental(const RefMap& previous, const RefMap& current);

// The previous tips (peeled) of refs that hold commits, exist in both
// `previous` and `current` and moved, that are not in `common` (sorted):
// history the server may have lost, sorted, without duplicates.
std::vector<std::string> lost_tips(const RefMap& previous, const RefMap& current,
                                   const std::vector<std::string>& common);

// An open protocol v2 session whose refs have been listed (one ls-refs with
// ref-prefix filters), kept open so that the fetch which may follow needs no
// second connection and no second ls-refs: a cold snapshot costs the server
// one session, as `git clone` does. Destroying it closes the connection.
class ListedRemote {
  public:
    static Result<ListedRemote> open(const StreamRequest& request);
    // The same on an already open session (tests inject a fake connection here).
    static Result<ListedRemote> open(const StreamRequest& request, ProtocolClient client);

    // The selected refs, HEAD and object format; `pack_written` is false.
    [[nodiscard]] const StreamResult& listing() const { return m_result; }
    // When the listing was taken (an idle session may have been dropped by now).
    [[nodiscard]] std::chrono::steady_clock::time_point listed_at() const { return m_listed_at; }

    // A full bundle of the listed refs, as stream_full_bundle().
    Result<StreamResult> full_bundle(ObjectWriter& out, const BlobScan& blobs = {});
    // An incremental bundle on top of `previous`, as stream_incremental_bundle().
    Result<StreamResult> incremental_bundle(const RefMap& previous, ObjectWriter& out,
                                            const std::string& previous_head_oid = {},
                                            const IncrementalExtras& extras = {});
    // End the session; fails when the server side reported an error.
    Status close();

  private:
    ListedRemote(StreamRequest request, ProtocolClient client, StreamResult result)
        : m_request(std::move(request)), m_client(std::move(client)), m_result(std::move(result)) {}

    StreamRequest m_request;
    ProtocolClient m_client;
    StreamResult m_result;
    std::chrono::steady_clock::time_point m_listed_at = std::chrono::steady_clock::now();
};

// The remote's refs selected by `request.patterns` (one ls-refs with ref-prefix
// filters), with HEAD and the object format; nothing is fetched.
Result<StreamResult> list_remote(const StreamRequest& request);

// Write a full bundle of the selected refs into `out`: ls-refs, the header
// listing every selected ref (and a detached HEAD's object as k_head_ref, so
// that a HEAD no selected ref reaches restores), then the pack of every distinct tip (tag
// objects for annotated tags), checked against its trailer. Writes nothing
// (pack_written false) when no ref is selected. Never commits or aborts `out`.
// `blobs`: small blobs reported as the pack passes.
Result<StreamResult> stream_full_bundle(const StreamRequest& request, ObjectWriter& out,
                                        const BlobScan& blobs = {});

// Write an incremental bundle on top of the snapshot whose ref map was
// `previous`: wants only new tips, sends `previous`'s tips as haves (thin
// pack unless `extras.thin_pack` is false; `extras.haves` join them), holds
// the pack back (in memory up to 8 MiB, then in an anonymous temporary file)
// while scanning its commits (and small blobs: `extras.blobs`), and
// then writes a header whose prerequisites are the parents of the pack's
// commits that are not in it (what the pack needs; the parents of a shallow
// boundary excepted) and whose refs are only those created or moved (the manifest holds every ref, and
// restore sets them from it); a detached HEAD on an object that neither `previous` nor
// `previous_head_oid` (the previous snapshot's detached HEAD) holds is
// wanted and listed as k_head_ref. Refs-only changes and an unchanged
// repository write nothing (pack_written false). Never commits or aborts `out`.
Result<StreamResult> stream_incremental_bundle(const StreamRequest& request, const RefMap& previous,
                                               ObjectWriter& out, const std::string& previous_head_oid = {},
                                               const IncrementalExtras& extras = {});

// Whether the server at `options.url` speaks protocol v2 (false for v0/v1);
// fails only when it cannot be reached.
Result<bool> remote_speaks_v2(const TransportOptions& options);

} // namespace snapshotter::git
