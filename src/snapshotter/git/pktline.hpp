// pkt-line framing of the git wire protocol (gitprotocol-common): an encoder,
// an incremental decoder that never over-reads hostile input, and the
// side-band-64k demultiplexer used for pack data.
#pragma once

#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace snapshotter::git {

// Largest pkt-line on the wire, length prefix included.
inline constexpr std::size_t k_max_pkt_len = 65520;
// Largest payload of a data pkt-line.
inline constexpr std::size_t k_max_pkt_payload = k_max_pkt_len - 4;

// The four kinds of packet: data, and the special packets 0000, 0001, 0002.
enum class PacketType { data, flush, delim, response_end };

// One decoded packet; `payload` is empty for special packets and stays valid
// until the decoder is fed again.
struct Packet {
    PacketType type = PacketType::flush;
    std::string_view payload;
};

// Append the pkt-line holding `payload` to `out`; fails with Internal when
// `payload` is longer than k_max_pkt_payload.
Status append_pkt(std::string& out, std::string_view payload);
// Append `line` plus a trailing LF as one pkt-line (the text-line convention).
Status append_pkt_line(std::string& out, std::string_view line);
// Append a flush packet ("0000").
void append_flush(std::string& out);
// Append a delimiter packet ("0001").
void append_delim(std::string& out);

// `payload` without one trailing LF, the way text lines are compared.
std::string_view chomp(std::string_view payload);

// Incremental pkt-line decoder: feed() bytes as they arrive, then call next()
// until it returns no packet. Memory stays bounded by one packet plus the
// last chunk fed.
class PktLineDecoder {
  public:
    // Append `data` to the bytes waiting to be decoded; invalidates payloads
    // returned before.
    void feed(std::span<const std::byte> data);
    void feed(std::string_view data);
    // The next complete packet, nullopt when more bytes are needed, or a Git
    // error for a malformed length (bad hex, 0003, longer than k_max_pkt_len).
    Result<std::optional<Packet>> next();
    // Bytes fed but not yet returned as packets.
    [[nodiscard]] std::size_t buffered() const { return m_buffer.size() - m_offset; }

  private:
    std::string m_buffer;
    std::size_t m_offset = 0;
};

// At most the first 200 bytes of `bytes` a server sent, fit for an error
// message: every byte outside printable ASCII becomes '?'.
std::string wire_excerpt(std::string_view bytes);

// The Git error for a message the remote sent on band 3 or in an "ERR"
// packet: "remote error: " plus its redacted wire_excerpt() without the
// trailing LF, its cause judged from that excerpt (git/failure.hpp). Hostile
// lengths cost nothing: only the excerpt is examined.
Error remote_error(std::string_view message);

// The Git error "protocol error: `detail`" of a server that broke the
// protocol (Cause::protocol: the git-CLI engine may still succeed).
Error protocol_error(std::string_view detail);

// Receives demultiplexed bytes (pack data or progress text).
using BandSink = std::function<Status(std::string_view)>;

// Route one side-band-64k payload: band 1 to `on_data`, band 2 to
// `on_progress` (may be empty), band 3 becomes a Git error carrying the
// remote's message; any other band or an empty payload is a Git error.
Status demux_sideband(std::string_view payload, const BandSink& on_data, const BandSink& on_progress);

} // namespace snapshotter::git
