// The git protocol v2 client (gitprotocol-v2): the capability advertisement,
// `ls-refs` and `fetch`, over any Connection. Pack data is handed to a sink
// chunk by chunk as it arrives; nothing holds a whole pack.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/git/transport.hpp"
#include "snapshotter/util/error.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

// What a server may make the client hold in memory (docs/SECURITY.md, "Memory
// budget"): every section of the conversation is counted as it arrives and a
// server that goes past a bound ends the repository with a Git error naming it.
// The pack itself is never held (it streams to the writer) and is bounded by
// FetchRequest::max_pack_bytes.
//
// The capability advertisement (v2), every packet and its framing counted;
// v0/v1 advertisements are not read past their first packet.
inline constexpr std::size_t k_max_advertisement_bytes = std::size_t{1} << 20;
// Lines of the capability advertisement.
inline constexpr std::size_t k_max_advertisement_lines = 10000;
// One ls-refs line: an object id, a ref name, symref-target and peeled.
inline constexpr std::size_t k_max_ls_refs_line = 8192;
// Everything before the packfile section of a fetch response (acknowledgments,
// shallow-info, wanted-refs...): this much plus k_pre_pack_bytes_per_oid for
// each want and have of the request.
inline constexpr std::size_t k_max_pre_pack_bytes = std::size_t{4} << 20;
inline constexpr std::size_t k_pre_pack_bytes_per_oid = 160;

// The phrase of the error a server that only speaks protocol v0/v1 causes.
inline constexpr std::string_view k_not_v2 = "does not speak git protocol v2";

// True when `error` says the server does not speak protocol v2 (so the
// git-CLI engine should be used instead): a Git error with Cause::not_v2.
bool is_not_v2_error(const Error& error);

// True when `error` is the server refusing or garbling the protocol itself
// (not v2, a malformed advertisement or response) rather than the
// repository or the network failing: the git-CLI engine may still succeed.
// A Git error with Cause::not_v2 or Cause::protocol.
bool is_protocol_refusal(const Error& error);

// What the server's first response said.
struct ServerCapabilities {
    int version = 0;                           // 2 for protocol v2; 0 or 1 for older servers
    std::string object_format = "sha1";        // the repository's hash ("sha1" when not advertised)
    bool object_format_advertised = false;     // the server sent object-format=...
    std::string agent;                         // agent=... value, may be empty
    std::vector<std::string> ls_refs_features; // values of ls-refs=..., e.g. "unborn"
    std::vector<std::string> fetch_features;   // values of fetch=..., e.g. "shallow", "filter"
    bool has_ls_refs = false;
    bool has_fetch = false;
    std::vector<std::string> lines; // every capability line as sent

    // True when `fetch=` lists `feature`.
    [[nodiscard]] bool fetch_supports(std::string_view feature) const;
    // True when `ls-refs=` lists `feature`.
    [[nodiscard]] bool ls_refs_supports(std::string_view feature) const;
};

// Collects and parses a capability advertisement fed in chunks; v0/v1
// advertisements are recognised from their first line and not read further.
class AdvertisementParser {
  public:
    // Feed the next bytes; true once the advertisement is complete.
    Result<bool> feed(std::span<const std::byte> data);
    // The parsed capabilities; valid once feed() returned true.
    [[nodiscard]] const ServerCapabilities& capabilities() const { return m_caps; }

  private:
    PktLineDecoder m_decoder;
    ServerCapabilities m_caps;
    std::size_t m_bytes = 0; // counted against k_max_advertisement_bytes
    bool m_seen_first = false;
    bool m_skipping_service_header = false;
};

// The refs a server listed, with HEAD.
struct LsRefsResult {
    RefMap refs;                         // refs/... names only, peeled where annotated
    std::optional<std::string> head;     // the ref HEAD points at, when a symref
    std::optional<std::string> head_oid; // the object HEAD resolves to; absent when unborn
    bool head_unborn = false;            // HEAD names a branch that does not exist yet
};

// Parse one ls-refs response line (without pkt framing or LF) into `out`;
// fails with Git for a malformed line or one longer than k_max_ls_refs_line.
Status parse_ls_refs_line(std::string_view line, std::string_view object_format, LsRefsResult& out);
// Parse the ls-refs response lines in `lines` (without pkt framing or LF).
Result<LsRefsResult> parse_ls_refs_lines(const std::vector<std::string>& lines,
                                         std::string_view object_format);

// What to fetch.
struct FetchRequest {
    std::vector<std::string> wants;   // oids to fetch
    std::vector<std::string> haves;   // oids the receiver has (their closure is not sent)
    bool thin_pack = true;            // allow deltas against `haves`
    bool progress = false;            // ask for band-2 progress messages
    std::uint64_t max_pack_bytes = 0; // stop with a Git error once the pack grows past this; 0: no limit
    bool done = true;                 // false: a negotiation round (no "done"): the server answers with its
                                      // acknowledgments, and with the pack only once it is "ready"
    bool wait_for_done = false;       // with `done` false: ask the server never to be "ready" (sent only
                                      // when it advertises fetch=wait-for-done), so every ACK comes back
    // Commits sent as "shallow <oid>" lines: the receiver holds them but,
    // says the line, not their parents (git/stream.hpp, WalkAnchor, says
    // why a receiver with whole history sends one). Sent only when the
    // server advertises fetch=shallow; otherwise the request fails.
    std::vector<std::string> shallow;
};

// The bytes a fetch response may spend before its packfile section.
std::size_t pre_pack_budget(const FetchRequest& request);

// What a fetch delivered.
struct FetchResult {
    std::uint64_t pack_bytes = 0;             // band-1 bytes handed to the sink
    std::vector<std::string> acknowledgments; // ACK/NAK/ready lines, when the server sent any
    bool pack_received = false;               // a packfile section came (always, once `done` was sent)
    std::vector<std::string> shallow;         // oids of "shallow" lines in shallow-info: the server's
                                              // repository is shallow (its history is cut there)
};

// What the acknowledgments section of a negotiation round said.
struct Acknowledgments {
    std::vector<std::string> common; // haves the server has ("ACK <oid>"), sorted, without duplicates
    bool ready = false;              // the server found a cut for every want ("ready")
};

// Parse `lines` (FetchResult::acknowledgments) of a round that sent `haves`;
// fails with Git (a protocol error) on a malformed line, an oid not of
// `object_format`, or an ACK of an object that was not offered.
Result<Acknowledgments> parse_acknowledgments(const std::vector<std::string>& lines,
                                              const std::vector<std::string>& haves,
                                              std::string_view object_format);

// The ref-prefix arguments for `patterns` ("refs/heads/*" -> "refs/heads/",
// exact names as they are), without duplicates; empty `patterns` means none.
std::vector<std::string> ref_prefixes_for(const std::vector<std::string>& patterns);

// Skipping the capability request over smart HTTP (docs/streaming-engine.md,
// "Two requests per repository over smart HTTP"). `git http-backend` runs
// `upload-pack --stateless-rpc`, which in protocol v2 serves one command
// without advertising (git's serve.c), so a client that already knows what
// the server speaks may POST ls-refs at once: one request fewer per
// repository, two server processes fewer (the CGI and its upload-pack).
// gitprotocol-http asks for discovery first, so what the memo assumes is
// proven by the answer or thrown away: the object format is sent with every
// command (when the origin advertised one) and a v2 git server refuses a
// command whose format differs from its repository's ("mismatched object
// format", serve.c, since git 2.28; its default without the capability is
// sha1), every object id of the answer must have the assumed format's
// length, and an answer with no object id proves nothing. A direct request
// that fails with a Git error (an HTTP status, another Content-Type, an ERR
// packet, a v0 or garbled answer, an empty body) or proves nothing is
// followed by the usual discovery on the same connection, and the repository
// goes on from there as if the memo did not exist; only a Timeout or an
// Interrupted error ends it at once.
//
// Entries are keyed by origin (scheme, host, port) and a digest of the
// credential (user name and password), so that capabilities learned with one
// credential are never assumed for another; only advertisements of protocol
// v2 that came from the configured origin itself (no redirect to another)
// are recorded, and the last one wins. Bounded: at most k_max_memo_origins
// keys, an advertisement of at most k_max_memo_capability_bytes, and a key
// whose direct requests were refused k_max_memo_refusals times in a row (by
// repositories that then answered after discovery: a repository that fails
// either way, such as a missing one, is not the memo's fault) is not used
// again by the job (its connections discover, as without a memo).
// Thread-safe: a job's workers share one.
inline constexpr std::size_t k_max_memo_origins = 256;
inline constexpr std::size_t k_max_memo_capability_bytes = 4096;
inline constexpr int k_max_memo_refusals = 3;

class CapabilityMemo {
  public:
    // The memo key of `options`: its http(s) origin and a digest of its
    // credential; nullopt for any other transport (their servers speak first).
    static std::optional<std::string> key_of(const TransportOptions& options);
    // The capabilities to assume under `key`: the last ones discovered there;
    // nullopt when there are none or the key's direct requests were refused
    // k_max_memo_refusals times in a row.
    [[nodiscard]] std::optional<ServerCapabilities> assumed(const std::string& key) const;
    // A discovery under `key` found `caps`: recorded when they are protocol v2
    // and within the bounds above, replacing what was there.
    void discovered(const std::string& key, const ServerCapabilities& caps);
    // A request sent on assumed capabilities under `key` was answered (`worked`
    // true: the refusal count starts again) or refused while discovery then
    // worked (false: counted).
    void answered(const std::string& key, bool worked);

  private:
    struct Entry {
        ServerCapabilities caps;
        int refusals = 0; // in a row
    };
    mutable std::mutex m_mutex;
    std::map<std::string, Entry> m_entries;
};

// Whether a direct request (sent on assumed capabilities) that failed with
// `error` is followed by discovery: every Git error, nothing else (a
// Timeout, an Interrupted job, an Internal error end the repository).
bool falls_back_to_discovery(const Error& error);

// Where a session reads and records capabilities: `memo` under `key`; a null
// `memo` reads the advertisement every time.
struct MemoSlot {
    CapabilityMemo* memo = nullptr;
    std::string key;
};

// A protocol v2 session on one connection.
class ProtocolClient {
  public:
    // Connect and read the advertisement (or, over smart HTTP with
    // `options.capabilities` set, assume what the memo holds for the origin and
    // credential, see CapabilityMemo); fails with Git when the server does
    // not speak protocol v2 (the error says which version it spoke).
    static Result<ProtocolClient> open(const TransportOptions& options);
    // The same on an already open connection (tests inject one here): with
    // `slot.memo` set and a stateless() connection, capabilities are assumed
    // from the memo when it has them.
    static Result<ProtocolClient> open(std::unique_ptr<Connection> connection, MemoSlot slot = {});

    // The advertised capabilities (the assumed ones until a first command proved them).
    [[nodiscard]] const ServerCapabilities& capabilities() const { return m_caps; }
    // True while the capabilities are the memo's, not yet proven by an answer.
    [[nodiscard]] bool assumed() const { return m_assumed; }
    // The remote, safe to print.
    [[nodiscard]] std::string describe() const { return m_connection->describe(); }

    // ls-refs with peel, symrefs, unborn (when supported) and one ref-prefix
    // per entry of `prefixes` (plus HEAD); empty `prefixes` lists every ref.
    // A response of more than `max_refs` lines besides HEAD (0: no limit) is
    // stopped as it arrives with a Git error naming the limit; each line is
    // parsed as it arrives, so a malformed one (an empty packet, no space)
    // ends the response at once. On assumed capabilities, a refused or
    // unproven answer (CapabilityMemo) is followed by discovery and ls-refs again.
    Result<LsRefsResult> ls_refs(const std::vector<std::string>& prefixes, std::size_t max_refs = 0);
    // fetch `request` (want, have, done unless `request.done` is false) and stream the pack's band-1 bytes
    // into `on_pack`, progress into `on_progress` (may be empty). A remote
    // error (band 3, ERR) is a Git error naming the server's message; a pack
    // past `request.max_pack_bytes` is stopped with a Git error naming the limit,
    // and so are sections before the pack past pre_pack_budget(request).
    // A negotiation round (`request.done` false) may end after its
    // acknowledgments without a pack (pack_received false). On capabilities
    // still assumed (no ls-refs came first), the advertisement is read first.
    Result<FetchResult> fetch(const FetchRequest& request, const BandSink& on_pack,
                              const BandSink& on_progress);
    // End the session; fails when the server side reported an error.
    Status close();

  private:
    ProtocolClient(std::unique_ptr<Connection> connection, ServerCapabilities caps, MemoSlot slot,
                   bool assumed)
        : m_connection(std::move(connection)), m_caps(std::move(caps)), m_slot(std::move(slot)),
          m_assumed(assumed) {}
    // Read the advertisement into m_caps (recorded in the memo) and stop assuming.
    Status discover();
    // One ls-refs request on the current capabilities.
    Result<LsRefsResult> ls_refs_once(const std::vector<std::string>& prefixes, std::size_t max_refs);
    // The "command=..." line and capability lines every request starts with.
    Status append_command_header(std::string& out, std::string_view command) const;

    std::unique_ptr<Connection> m_connection;
    ServerCapabilities m_caps;
    MemoSlot m_slot;
    bool m_assumed = false; // m_caps came from the memo and no answer proved them yet
};

// Connect to `options.url` and read only the advertisement: which protocol
// version the server speaks and, for v2, its capabilities.
Result<ServerCapabilities> probe_server(const TransportOptions& options);

} // namespace snapshotter::git
