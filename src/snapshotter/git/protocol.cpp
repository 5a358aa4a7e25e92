#include "snapshotter/git/protocol.hpp"

#include "snapshotter/git/bundle_writer.hpp"
#include "snapshotter/util/hash.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <spdlog/spdlog.h>

namespace snapshotter::git {
namespace {

std::vector<std::string> split_words(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto sp = text.find(' ');
        if (sp != 0)
            out.emplace_back(text.substr(0, sp));
        if (sp == std::string_view::npos)
            break;
        text.remove_prefix(sp + 1);
    }
    return out;
}

// The second space-separated word of `line` (an ls-refs line's ref name), or empty.
std::string_view second_word(std::string_view line) {
    auto sp = line.find(' ');
    if (sp == std::string_view::npos)
        return {};
    line.remove_prefix(sp + 1);
    return line.substr(0, line.find(' '));
}

// An "ERR <message>" packet turned into a Git error.
std::optional<Error> err_packet(std::string_view payload) {
    if (!payload.starts_with("ERR "))
        return std::nullopt;
    return remote_error(payload.substr(4));
}

Status append_line(std::string& out, std::string_view line) {
    return append_pkt_line(out, line);
}

// The server's capability advertisement, read from `connection`.
Result<ServerCapabilities> read_capabilities(Connection& connection) {
    AdvertisementParser parser;
    auto s = connection.read_advertisement(
        [&](std::span<const std::byte> data) -> Result<bool> { return parser.feed(data); });
    if (!s)
        return fail(s.error());
    return parser.capabilities();
}

} // namespace

bool ServerCapabilities::fetch_supports(std::string_view feature) const {
    return std::find(fetch_features.begin(), fetch_features.end(), feature) != fetch_features.end();
}

bool ServerCapabilities::ls_refs_supports(std::string_view feature) const {
    return std::find(ls_refs_features.begin(), ls_refs_features.end(), feature) != ls_refs_features.end();
}

Result<bool> AdvertisementParser::feed(std::span<const std::byte> data) {
    m_decoder.feed(data);
    while (true) {
        auto packet = m_decoder.next();
        if (!packet)
            return fail(packet.error());
        if (!*packet)
            return false;
        const Packet& p = **packet;
        m_bytes += p.payload.size() + 4;
        if (m_bytes > k_max_advertisement_bytes)
            return fail(protocol_error(
                fmt::format("capability advertisement larger than {} bytes", k_max_advertisement_bytes)));
        if (!m_seen_first) {
            // A v0 server with no refs to show may send nothing but a flush
            // (Dulwich does; git's own client accepts it).
            if (p.type == PacketType::flush) {
                m_seen_first = true;
                m_caps.version = 0;
                return true;
            }
            if (p.type != PacketType::data)
                return fail(protocol_error("the advertisement starts with a special packet"));
            if (auto e = err_packet(p.payload))
                return fail(*e);
            std::string_view line = chomp(p.payload);
            if (line.starts_with("# service=")) {
                // Smart HTTP of an older server: "# service=..." then a flush, then the real advertisement.
                m_skipping_service_header = true;
                m_seen_first = true;
                continue;
            }
            m_seen_first = true;
            if (line == "version 2") {
                m_caps.version = 2;
                continue;
            }
            // "version 1" or a v0 ref line: an older protocol; stop here.
            m_caps.version = line == "version 1" ? 1 : 0;
            return true;
        }
        if (m_skipping_service_header) {
            if (p.type == PacketType::flush) {
                m_skipping_service_header = false;
                m_seen_first = false;
                continue;
            }
            return fail(protocol_error("no flush after \"# service=\""));
        }
        if (p.type == PacketType::flush || p.type == PacketType::response_end)
            return true;
        if (p.type != PacketType::data)
            return fail(protocol_error("unexpected delimiter in the capability advertisement"));
        if (m_caps.lines.size() >= k_max_advertisement_lines)
            return fail(protocol_error("capability advertisement too long"));
        std::string line(chomp(p.payload));
        m_caps.lines.push_back(line);
        auto eq = line.find('=');
        std::string key = line.substr(0, eq);
        std::string value = eq == std::string::npos ? std::string{} : line.substr(eq + 1);
        if (key == "object-format") {
            if (oid_hex_length(value) == 0)
                return fail(Error::git(
                    fmt::format("server uses unsupported object format \"{}\"", wire_excerpt(value))));
            m_caps.object_format = value;
            m_caps.object_format_advertised = true;
        } else if (key == "agent") {
            m_caps.agent = value;
        } else if (key == "ls-refs") {
            m_caps.has_ls_refs = true;
            m_caps.ls_refs_features = split_words(value);
        } else if (key == "fetch") {
            m_caps.has_fetch = true;
            m_caps.fetch_features = split_words(value);
        }
    }
}

Result<LsRefsResult> parse_ls_refs_lines(const std::vector<std::string>& lines,
                                         std::string_view object_format) {
    LsRefsResult out;
    for (const auto& line : lines)
        if (auto s = parse_ls_refs_line(line, object_format, out); !s)
            return fail(s.error());
    return out;
}

Status parse_ls_refs_line(std::string_view line, std::string_view object_format, LsRefsResult& out) {
    if (auto e = err_packet(line))
        return fail(*e);
    if (line.size() > k_max_ls_refs_line)
        return fail(protocol_error(
            fmt::format("ls-refs line of {} bytes (the limit is {})", line.size(), k_max_ls_refs_line)));
    auto words = split_words(line);
    if (words.size() < 2)
        return fail(protocol_error(fmt::format("bad ls-refs line \"{}\"", wire_excerpt(line))));
    const std::string& oid = words[0];
    const std::string& name = words[1];
    bool unborn = oid == "unborn";
    if (!unborn && !is_valid_oid(oid, object_format))
        return fail(protocol_error(fmt::format("bad object id in ls-refs line \"{}\"", wire_excerpt(line))));
    std::optional<std::string> symref, peeled;
    for (std::size_t i = 2; i < words.size(); ++i) {
        std::string_view attr = words[i];
        if (attr.starts_with("symref-target:"))
            symref = std::string(attr.substr(14));
        else if (attr.starts_with("peeled:")) {
            if (!is_valid_oid(attr.substr(7), object_format))
                return fail(protocol_error("bad peeled object id in ls-refs"));
            peeled = std::string(attr.substr(7));
        }
    }
    if (name == "HEAD") {
        out.head = symref;
        out.head_unborn = unborn;
        if (!unborn)
            out.head_oid = oid;
        return {};
    }
    if (unborn || !name.starts_with("refs/"))
        return {};
    out.refs[name] = RefTarget{oid, peeled.value_or(std::string{})};
    return {};
}

std::size_t pre_pack_budget(const FetchRequest& request) {
    return k_max_pre_pack_bytes +
           k_pre_pack_bytes_per_oid * (request.wants.size() + request.haves.size() + request.shallow.size());
}

Result<Acknowledgments> parse_acknowledgments(const std::vector<std::string>& lines,
                                              const std::vector<std::string>& haves,
                                              std::string_view object_format) {
    const std::set<std::string_view> offered(haves.begin(), haves.end());
    std::set<std::string> common;
    Acknowledgments out;
    for (const auto& line : lines) {
        if (line == "NAK")
            continue;
        if (line == "ready") {
            out.ready = true;
            continue;
        }
        std::string_view oid = std::string_view(line).substr(line.starts_with("ACK ") ? 4 : line.size());
        if (!line.starts_with("ACK ") || !is_valid_oid(oid, object_format))
            return fail(protocol_error(fmt::format("bad acknowledgment \"{}\"", wire_excerpt(line))));
        if (!offered.contains(oid))
            return fail(protocol_error(
                fmt::format("acknowledged {}, which was not offered as a have", wire_excerpt(oid))));
        common.insert(std::string(oid));
    }
    out.common.assign(common.begin(), common.end());
    return out;
}

std::vector<std::string> ref_prefixes_for(const std::vector<std::string>& patterns) {
    std::set<std::string> prefixes;
    for (const auto& p : patterns)
        prefixes.insert(p.ends_with('*') ? p.substr(0, p.size() - 1) : p);
    // A prefix covered by a shorter one adds nothing.
    std::vector<std::string> out;
    for (const auto& p : prefixes)
        if (out.empty() || !p.starts_with(out.back()))
            out.push_back(p);
    return out;
}

std::optional<std::string> CapabilityMemo::key_of(const TransportOptions& options) {
    auto origin = origin_of(options.url);
    if (!origin)
        return std::nullopt;
    // The credential enters the key as a digest only: the memo holds no secret.
    std::string credential = options.username;
    credential += '\0';
    credential += options.password;
    return fmt::format("{}://{}:{} {}", origin->scheme, origin->host, origin->port, sha256_hex(credential));
}

std::optional<ServerCapabilities> CapabilityMemo::assumed(const std::string& key) const {
    std::lock_guard lock(m_mutex);
    auto it = m_entries.find(key);
    if (it == m_entries.end() || it->second.refusals >= k_max_memo_refusals)
        return std::nullopt;
    return it->second.caps;
}

void CapabilityMemo::discovered(const std::string& key, const ServerCapabilities& caps) {
    if (caps.version != 2)
        return;
    std::size_t bytes = 0;
    for (const auto& line : caps.lines)
        bytes += line.size() + 1;
    if (bytes > k_max_memo_capability_bytes)
        return;
    std::lock_guard lock(m_mutex);
    auto it = m_entries.find(key);
    if (it != m_entries.end())
        it->second.caps = caps; // the refusals in a row stay counted
    else if (m_entries.size() < k_max_memo_origins)
        m_entries.emplace(key, Entry{caps});
}

void CapabilityMemo::answered(const std::string& key, bool worked) {
    std::lock_guard lock(m_mutex);
    auto it = m_entries.find(key);
    if (it == m_entries.end())
        return;
    it->second.refusals = worked ? 0 : it->second.refusals + 1;
}

bool falls_back_to_discovery(const Error& error) {
    return error.kind == ErrorKind::Git;
}

Result<ProtocolClient> ProtocolClient::open(const TransportOptions& options) {
    auto connection = connect(options);
    if (!connection)
        return fail(connection.error());
    MemoSlot slot;
    if (options.capabilities != nullptr)
        if (auto key = CapabilityMemo::key_of(options))
            slot = {options.capabilities, std::move(*key)};
    return open(std::move(*connection), std::move(slot));
}

bool is_not_v2_error(const Error& error) {
    return error.kind == ErrorKind::Git && error.cause == Cause::not_v2;
}

bool is_protocol_refusal(const Error& error) {
    return is_not_v2_error(error) || (error.kind == ErrorKind::Git && error.cause == Cause::protocol);
}

Result<ProtocolClient> ProtocolClient::open(std::unique_ptr<Connection> connection, MemoSlot slot) {
    // Over smart HTTP, what the origin advertised to an earlier repository of
    // the job is assumed until the first answer proves or refutes it.
    if (slot.memo != nullptr && connection->stateless())
        if (auto caps = slot.memo->assumed(slot.key))
            return ProtocolClient(std::move(connection), std::move(*caps), std::move(slot), true);
    ProtocolClient client(std::move(connection), {}, std::move(slot), false);
    if (auto s = client.discover(); !s)
        return fail(s.error());
    return client;
}

Status ProtocolClient::discover() {
    auto caps = read_capabilities(*m_connection);
    if (!caps)
        return fail(caps.error());
    if (caps->version != 2) {
        (void)m_connection->close();
        return fail(Error::git(
            fmt::format("{} {} (it answered with v{})", describe(), k_not_v2, caps->version), Cause::not_v2));
    }
    if (!caps->has_ls_refs || !caps->has_fetch)
        return fail(Error::git(fmt::format("{} does not offer ls-refs and fetch", describe())));
    m_caps = std::move(*caps);
    m_assumed = false;
    if (m_slot.memo != nullptr && m_connection->stateless() && m_connection->advertised_by_origin())
        m_slot.memo->discovered(m_slot.key, m_caps);
    return {};
}

Status ProtocolClient::append_command_header(std::string& out, std::string_view command) const {
    if (auto s = append_line(out, fmt::format("command={}", command)); !s)
        return s;
    if (!m_caps.agent.empty())
        if (auto s = append_line(out, fmt::format("agent=snapshotter/{}", SNAPSHOTTER_VERSION)); !s)
            return s;
    if (m_caps.object_format_advertised)
        if (auto s = append_line(out, fmt::format("object-format={}", m_caps.object_format)); !s)
            return s;
    append_delim(out);
    return {};
}

Result<LsRefsResult> ProtocolClient::ls_refs(const std::vector<std::string>& prefixes, std::size_t max_refs) {
    if (!m_assumed)
        return ls_refs_once(prefixes, max_refs);
    // Sent on the memo's capabilities: an answer with an object id proves them
    // (the server checked the object format, and so did the parser).
    auto listed = ls_refs_once(prefixes, max_refs);
    if (listed && (!listed->refs.empty() || listed->head_oid)) {
        m_assumed = false;
        m_slot.memo->answered(m_slot.key, true);
        return listed;
    }
    const bool refused = !listed;
    if (refused) {
        if (!falls_back_to_discovery(listed.error()))
            return listed;
        spdlog::debug("{}: ls-refs on the capabilities its origin advertised before failed ({}); asking "
                      "for the advertisement",
                      describe(), listed.error().message);
    }
    if (auto s = discover(); !s)
        return fail(s.error());
    auto again = ls_refs_once(prefixes, max_refs);
    // Counted against the memo only when it was the memo's fault: the
    // repository answers once discovered (a missing one fails either way).
    if (again && refused)
        m_slot.memo->answered(m_slot.key, false);
    return again;
}

Result<LsRefsResult> ProtocolClient::ls_refs_once(const std::vector<std::string>& prefixes,
                                                  std::size_t max_refs) {
    std::string body;
    if (auto s = append_command_header(body, "ls-refs"); !s)
        return fail(s.error());
    std::vector<std::string> args{"peel", "symrefs"};
    if (m_caps.ls_refs_supports("unborn"))
        args.emplace_back("unborn");
    if (!prefixes.empty()) {
        args.emplace_back("ref-prefix HEAD");
        for (const auto& p : prefixes)
            args.push_back("ref-prefix " + p);
    }
    for (const auto& a : args)
        if (auto s = append_line(body, a); !s)
            return fail(s.error());
    append_flush(body);

    PktLineDecoder decoder;
    LsRefsResult result;
    std::size_t ref_count = 0;
    bool seen_head = false;
    auto s = m_connection->request(body, [&](std::span<const std::byte> data) -> Result<bool> {
        decoder.feed(data);
        while (true) {
            auto packet = decoder.next();
            if (!packet)
                return fail(packet.error());
            if (!*packet)
                return false;
            const Packet& p = **packet;
            if (p.type == PacketType::flush || p.type == PacketType::response_end)
                return true;
            if (p.type != PacketType::data)
                return fail(protocol_error("unexpected delimiter in ls-refs response"));
            // Counted and parsed as they arrive: a runaway list is cut off, not
            // collected. Every line counts (also those outside refs/ and the
            // malformed ones, which end the response); HEAD is not a ref.
            std::string_view line = chomp(p.payload);
            bool head = second_word(line) == "HEAD";
            if (!head || seen_head)
                ++ref_count;
            seen_head = seen_head || head;
            if (max_refs > 0 && ref_count > max_refs)
                return fail(Error::git(
                    fmt::format("the server advertised more than {} refs (options.max_refs)", max_refs)));
            if (auto parsed = parse_ls_refs_line(line, m_caps.object_format, result); !parsed)
                return fail(parsed.error().with_context(describe()));
        }
    });
    if (!s)
        return fail(s.error().with_context("ls-refs"));
    return result;
}

Result<FetchResult> ProtocolClient::fetch(const FetchRequest& request, const BandSink& on_pack,
                                          const BandSink& on_progress) {
    if (request.wants.empty())
        return fail(Error::internal("fetch without wants"));
    if (m_assumed)
        if (auto s = discover(); !s)
            return fail(s.error());
    std::string body;
    if (auto s = append_command_header(body, "fetch"); !s)
        return fail(s.error());
    std::vector<std::string> args;
    if (request.thin_pack)
        args.emplace_back("thin-pack");
    if (!request.progress)
        args.emplace_back("no-progress");
    args.emplace_back("ofs-delta");
    if (!request.shallow.empty() && !m_caps.fetch_supports("shallow"))
        return fail(Error::internal("fetch: shallow lines for a server without fetch=shallow"));
    for (const auto& c : request.shallow) {
        if (!is_valid_oid(c, m_caps.object_format))
            return fail(Error::internal(fmt::format("fetch: malformed shallow \"{}\"", wire_excerpt(c))));
        args.push_back("shallow " + c);
    }
    for (const auto& w : request.wants) {
        if (!is_valid_oid(w, m_caps.object_format))
            return fail(Error::internal(fmt::format("fetch: malformed want \"{}\"", wire_excerpt(w))));
        args.push_back("want " + w);
    }
    for (const auto& h : request.haves) {
        if (!is_valid_oid(h, m_caps.object_format))
            return fail(Error::internal(fmt::format("fetch: malformed have \"{}\"", wire_excerpt(h))));
        args.push_back("have " + h);
    }
    if (!request.done && request.wait_for_done && m_caps.fetch_supports("wait-for-done"))
        args.emplace_back("wait-for-done");
    if (request.done)
        args.emplace_back("done");
    for (const auto& a : args)
        if (auto s = append_line(body, a); !s)
            return fail(s.error());
    append_flush(body);

    // Sections: [acknowledgments] [shallow-info] [wanted-refs] [packfile-uris] packfile, each
    // followed by a delimiter, the last by a flush.
    enum class State { section_header, section_body, packfile };
    State state = State::section_header;
    std::string section;
    bool got_pack = false;
    FetchResult result;
    PktLineDecoder decoder;
    // Sections before the pack are counted, never kept beyond their budget.
    const std::size_t pre_pack_limit = pre_pack_budget(request);
    std::size_t pre_pack_bytes = 0;
    BandSink counting_sink = [&](std::string_view data) -> Status {
        if (request.max_pack_bytes > 0 && result.pack_bytes + data.size() > request.max_pack_bytes)
            return fail(Error::git(fmt::format("the pack is larger than {} bytes (options.max_pack_bytes)",
                                               request.max_pack_bytes)));
        result.pack_bytes += data.size();
        return on_pack(data);
    };
    auto s = m_connection->request(body, [&](std::span<const std::byte> data) -> Result<bool> {
        decoder.feed(data);
        while (true) {
            auto packet = decoder.next();
            if (!packet)
                return fail(packet.error());
            if (!*packet)
                return false;
            const Packet& p = **packet;
            if (p.type == PacketType::flush || p.type == PacketType::response_end)
                return true;
            if (state != State::packfile) {
                pre_pack_bytes += p.payload.size() + 4;
                if (pre_pack_bytes > pre_pack_limit)
                    return fail(protocol_error(
                        fmt::format("more than {} bytes before the packfile section", pre_pack_limit)));
            }
            if (p.type == PacketType::delim) {
                if (state == State::packfile)
                    return fail(protocol_error("delimiter inside the packfile section"));
                state = State::section_header;
                continue;
            }
            switch (state) {
            case State::section_header: {
                if (auto e = err_packet(p.payload))
                    return fail(*e);
                section = std::string(chomp(p.payload));
                if (section == "packfile") {
                    state = State::packfile;
                    got_pack = true;
                } else if (section == "acknowledgments" || section == "shallow-info" ||
                           section == "wanted-refs" || section == "packfile-uris") {
                    state = State::section_body;
                } else {
                    return fail(
                        protocol_error(fmt::format("unknown fetch section \"{}\"", wire_excerpt(section))));
                }
                break;
            }
            case State::section_body:
                if (auto e = err_packet(p.payload))
                    return fail(*e);
                if (section == "acknowledgments")
                    result.acknowledgments.emplace_back(chomp(p.payload));
                if (section == "shallow-info" && p.payload.starts_with("shallow ")) {
                    auto oid = chomp(p.payload).substr(8);
                    if (!is_valid_oid(oid, m_caps.object_format))
                        return fail(
                            protocol_error(fmt::format("bad shallow line \"{}\"", wire_excerpt(p.payload))));
                    result.shallow.emplace_back(oid);
                }
                if (section == "packfile-uris")
                    return fail(Error::git("server offered packfile-uris, which were not requested"));
                break;
            case State::packfile:
                if (auto st = demux_sideband(p.payload, counting_sink, on_progress); !st)
                    return fail(st.error());
                break;
            }
        }
    });
    if (!s)
        return fail(s.error().with_context(fmt::format("fetch from {}", describe())));
    result.pack_received = got_pack;
    if (!got_pack && request.done)
        return fail(Error::git(fmt::format("fetch from {}: the server sent no pack", describe())));
    if (!got_pack && result.acknowledgments.empty())
        return fail(protocol_error("a negotiation round without acknowledgments or a pack")
                        .with_context(fmt::format("fetch from {}", describe())));
    return result;
}

Status ProtocolClient::close() {
    return m_connection->close();
}

Result<ServerCapabilities> probe_server(const TransportOptions& options) {
    auto connection = connect(options);
    if (!connection)
        return fail(connection.error());
    auto caps = read_capabilities(**connection);
    if (!caps)
        return fail(caps.error());
    // Older servers keep talking (their ref list); the answer is known, so hang up.
    if (caps->version == 2)
        (void)(*connection)->close();
    return caps;
}

} // namespace snapshotter::git
