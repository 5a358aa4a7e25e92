// libFuzzer target: the pkt-line decoder and the side-band-64k demultiplexer,
// which read bytes sent by (untrusted) git servers. The input is fed in
// chunks whose sizes come from the input itself, so split packets are covered.
#include "snapshotter/git/pktline.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace snapshotter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    // First byte: chunk size for feeding (1..256).
    const std::size_t chunk = std::size_t{data[0]} + 1;
    std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};

    git::PktLineDecoder decoder;
    std::size_t data_bytes = 0;
    const git::BandSink on_data = [&](std::string_view bytes) -> Status {
        data_bytes += bytes.size();
        return {};
    };
    const git::BandSink on_progress = [](std::string_view) -> Status { return {}; };

    while (!rest.empty()) {
        const auto piece = rest.substr(0, chunk);
        rest.remove_prefix(piece.size());
        decoder.feed(piece);
        for (;;) {
            auto packet = decoder.next();
            if (!packet)
                return 0; // malformed stream: the decoder refused it, as it should
            if (!*packet)
                break; // needs more bytes
            if ((*packet)->type == git::PacketType::data) {
                (void)git::chomp((*packet)->payload);
                (void)git::demux_sideband((*packet)->payload, on_data, on_progress);
            }
        }
    }
    return data_bytes > size ? 1 : 0;
}
