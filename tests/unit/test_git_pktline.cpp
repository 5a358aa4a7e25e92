#include "snapshotter/git/pktline.hpp"

#include <gtest/gtest.h>
#include <random>
#include <vector>

using namespace snapshotter;
using namespace snapshotter::git;

namespace {

// Decode everything in `wire`, fed `chunk` bytes at a time.
Result<std::vector<std::pair<PacketType, std::string>>> decode_all(std::string_view wire, std::size_t chunk) {
    PktLineDecoder decoder;
    std::vector<std::pair<PacketType, std::string>> out;
    for (std::size_t pos = 0; pos < wire.size(); pos += chunk) {
        decoder.feed(wire.substr(pos, chunk));
        while (true) {
            auto packet = decoder.next();
            if (!packet)
                return fail(packet.error());
            if (!*packet)
                break;
            out.emplace_back((*packet)->type, std::string((*packet)->payload));
        }
    }
    return out;
}

} // namespace

TEST(PktLine, EncodesLinesAndSpecialPackets) {
    std::string out;
    ASSERT_TRUE(append_pkt_line(out, "command=ls-refs"));
    append_delim(out);
    ASSERT_TRUE(append_pkt(out, ""));
    append_flush(out);
    EXPECT_EQ(out, "0014command=ls-refs\n00010004"
                   "0000");
}

TEST(PktLine, RejectsOversizePayloadWhenEncoding) {
    std::string out;
    EXPECT_TRUE(append_pkt(out, std::string(k_max_pkt_payload, 'x')));
    EXPECT_EQ(out.substr(0, 4), "fff0");
    EXPECT_FALSE(append_pkt(out, std::string(k_max_pkt_payload + 1, 'x')));
    EXPECT_FALSE(append_pkt_line(out, std::string(k_max_pkt_payload, 'x')));
}

TEST(PktLine, DecodesAcrossEveryChunkSize) {
    std::string wire;
    ASSERT_TRUE(append_pkt_line(wire, "version 2"));
    ASSERT_TRUE(append_pkt_line(wire, "fetch=shallow"));
    append_delim(wire);
    wire += "0002";
    ASSERT_TRUE(append_pkt(wire, std::string(1000, '\x01')));
    append_flush(wire);
    for (std::size_t chunk = 1; chunk <= wire.size(); ++chunk) {
        auto packets = decode_all(wire, chunk);
        ASSERT_TRUE(packets) << packets.error().message;
        ASSERT_EQ(packets->size(), 6u);
        EXPECT_EQ((*packets)[0].second, "version 2\n");
        EXPECT_EQ(chomp((*packets)[1].second), "fetch=shallow");
        EXPECT_EQ((*packets)[2].first, PacketType::delim);
        EXPECT_EQ((*packets)[3].first, PacketType::response_end);
        EXPECT_EQ((*packets)[4].second.size(), 1000u);
        EXPECT_EQ((*packets)[5].first, PacketType::flush);
    }
}

TEST(PktLine, UppercaseHexIsAccepted) {
    auto packets = decode_all("000Ahello\n", 3);
    ASSERT_TRUE(packets);
    ASSERT_EQ(packets->size(), 1u);
}

TEST(PktLine, RejectsBadHex) {
    for (std::string_view bad : {"00g5x", "zzzz", "-001", " 004", "00\n4"}) {
        auto packets = decode_all(bad, 64);
        EXPECT_FALSE(packets) << bad;
        if (!packets) {
            EXPECT_EQ(packets.error().kind, ErrorKind::Git);
        }
    }
}

TEST(PktLine, RejectsLength3AndOversize) {
    EXPECT_FALSE(decode_all("0003", 4));
    EXPECT_FALSE(decode_all("fff1", 4));
    EXPECT_FALSE(decode_all("ffff", 4));
    EXPECT_TRUE(decode_all("fff0", 4)); // valid length, just incomplete
}

TEST(PktLine, ShortInputWaitsWithoutOverReading) {
    PktLineDecoder decoder;
    decoder.feed(std::string_view("00"));
    auto p = decoder.next();
    ASSERT_TRUE(p);
    EXPECT_FALSE(*p);
    decoder.feed(std::string_view("09abcd")); // declares 5 payload bytes, has 4
    p = decoder.next();
    ASSERT_TRUE(p);
    EXPECT_FALSE(*p);
    EXPECT_EQ(decoder.buffered(), 8u);
    decoder.feed(std::string_view("e"));
    p = decoder.next();
    ASSERT_TRUE(p);
    ASSERT_TRUE(*p);
    EXPECT_EQ((*p)->payload, "abcde");
}

TEST(PktLine, RandomBytesNeverCrash) {
    std::mt19937 rng(42);
    for (int round = 0; round < 2000; ++round) {
        std::string junk(rng() % 300, '\0');
        for (auto& c : junk) {
            // Bias towards hex digits so that many lengths parse.
            auto r = rng();
            c = (r % 3 == 0) ? static_cast<char>(r >> 8) : "0123456789abcdef"[(r >> 8) % 16];
        }
        PktLineDecoder decoder;
        for (std::size_t pos = 0; pos < junk.size(); pos += 7) {
            decoder.feed(std::string_view(junk).substr(pos, 7));
            bool stop = false;
            while (true) {
                auto p = decoder.next();
                if (!p) {
                    stop = true;
                    break;
                }
                if (!*p)
                    break;
                ASSERT_LE((*p)->payload.size(), k_max_pkt_payload);
            }
            if (stop)
                break;
        }
    }
}

TEST(Sideband, RoutesBands) {
    std::string data, progress;
    BandSink on_data = [&](std::string_view b) -> Status {
        data += b;
        return {};
    };
    BandSink on_progress = [&](std::string_view b) -> Status {
        progress += b;
        return {};
    };
    ASSERT_TRUE(demux_sideband(std::string("\x01PACK", 5), on_data, on_progress));
    ASSERT_TRUE(demux_sideband("\x02"
                               "Counting objects\r",
                               on_data, on_progress));
    ASSERT_TRUE(demux_sideband("\x02"
                               "ignored",
                               on_data, {}));
    EXPECT_EQ(data, "PACK");
    EXPECT_EQ(progress, "Counting objects\r");

    auto err = demux_sideband("\x03"
                              "upload-pack: not our ref\n",
                              on_data, on_progress);
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().kind, ErrorKind::Git);
    EXPECT_NE(err.error().message.find("not our ref"), std::string::npos);

    EXPECT_FALSE(demux_sideband("", on_data, on_progress));
    EXPECT_FALSE(demux_sideband("\x04x", on_data, on_progress));
}

TEST(Sideband, SinkErrorsPropagate) {
    BandSink failing = [](std::string_view) -> Status { return fail(Error::storage("disk full")); };
    auto s = demux_sideband("\x01x", failing, {});
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Storage);
}

TEST(Sideband, HostileRemoteErrorIsCutShort) {
    // A server may send a band-3 message as long as a packet allows; the
    // error keeps an excerpt, and producing it must not scan the whole text
    // with anything worse than linear cost.
    std::string payload = "\x03";
    payload += std::string(k_max_pkt_payload - 1, 'a');
    auto err = demux_sideband(payload, [](std::string_view) -> Status { return {}; }, {});
    ASSERT_FALSE(err);
    EXPECT_EQ(err.error().kind, ErrorKind::Git);
    EXPECT_EQ(err.error().message, "remote error: " + std::string(200, 'a'));
}

TEST(Sideband, RemoteErrorIsRedactedAndPrintable) {
    auto err = remote_error("denied for https://u:tok3n-xyz@h/r.git\x1b[2J\n");
    EXPECT_EQ(err.message, "remote error: denied for https://u:***@h/r.git?[2J");
}
