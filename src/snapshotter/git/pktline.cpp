#include "snapshotter/git/pktline.hpp"

#include "snapshotter/git/failure.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"

#include <fmt/format.h>

namespace snapshotter::git {
namespace {

constexpr std::string_view k_hex = "0123456789abcdef";

} // namespace

std::string wire_excerpt(std::string_view bytes) {
    std::string out;
    for (unsigned char c : bytes.substr(0, 200))
        out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    return out;
}

Error remote_error(std::string_view message) {
    std::string excerpt = redact(wire_excerpt(chomp(message)));
    return Error::git(fmt::format("remote error: {}", excerpt), classify_git_stderr(excerpt));
}

Error protocol_error(std::string_view detail) {
    return Error::git(fmt::format("protocol error: {}", detail), Cause::protocol);
}

Status append_pkt(std::string& out, std::string_view payload) {
    if (payload.size() > k_max_pkt_payload)
        return fail(Error::internal(fmt::format("pkt-line payload of {} bytes is too long", payload.size())));
    std::size_t len = payload.size() + 4;
    for (int shift = 12; shift >= 0; shift -= 4)
        out += k_hex[(len >> shift) & 0xf];
    out += payload;
    return {};
}

Status append_pkt_line(std::string& out, std::string_view line) {
    if (line.size() + 1 > k_max_pkt_payload)
        return fail(Error::internal(fmt::format("pkt-line of {} bytes is too long", line.size())));
    std::size_t len = line.size() + 5;
    for (int shift = 12; shift >= 0; shift -= 4)
        out += k_hex[(len >> shift) & 0xf];
    out += line;
    out += '\n';
    return {};
}

void append_flush(std::string& out) {
    out += "0000";
}
void append_delim(std::string& out) {
    out += "0001";
}

std::string_view chomp(std::string_view payload) {
    if (payload.ends_with('\n'))
        payload.remove_suffix(1);
    return payload;
}

void PktLineDecoder::feed(std::span<const std::byte> data) {
    feed(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

void PktLineDecoder::feed(std::string_view data) {
    // Drop consumed bytes first so the buffer holds at most one partial packet plus `data`.
    if (m_offset > 0) {
        m_buffer.erase(0, m_offset);
        m_offset = 0;
    }
    m_buffer.append(data);
}

Result<std::optional<Packet>> PktLineDecoder::next() {
    std::string_view rest = std::string_view(m_buffer).substr(m_offset);
    if (rest.size() < 4)
        return std::optional<Packet>{};
    std::size_t len = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        int v = hex_value(rest[i]);
        if (v < 0)
            return fail(
                protocol_error(fmt::format("bad pkt-line length \"{}\"", wire_excerpt(rest.substr(0, 4)))));
        len = (len << 4) | static_cast<std::size_t>(v);
    }
    if (len < 4) {
        if (len == 3)
            return fail(protocol_error("pkt-line length 0003 is invalid"));
        m_offset += 4;
        PacketType type = len == 0   ? PacketType::flush
                          : len == 1 ? PacketType::delim
                                     : PacketType::response_end;
        return std::optional<Packet>{Packet{type, {}}};
    }
    if (len > k_max_pkt_len)
        return fail(protocol_error(fmt::format("pkt-line length {} exceeds {}", len, k_max_pkt_len)));
    if (rest.size() < len)
        return std::optional<Packet>{};
    m_offset += len;
    return std::optional<Packet>{Packet{PacketType::data, rest.substr(4, len - 4)}};
}

Status demux_sideband(std::string_view payload, const BandSink& on_data, const BandSink& on_progress) {
    if (payload.empty())
        return fail(protocol_error("empty side-band packet"));
    std::string_view body = payload.substr(1);
    switch (payload.front()) {
    case 1:
        return on_data(body);
    case 2:
        return on_progress ? on_progress(body) : Status{};
    case 3:
        return fail(remote_error(body));
    default:
        return fail(
            protocol_error(fmt::format("unknown side-band {}", static_cast<unsigned char>(payload.front()))));
    }
}

} // namespace snapshotter::git
