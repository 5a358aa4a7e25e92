#include "snapshotter/git/protocol.hpp"
#include "snapshotter/git/stream.hpp"

#include <deque>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <random>

using namespace snapshotter;
using namespace snapshotter::git;

namespace {

std::string pkt(std::string_view line) {
    std::string out;
    EXPECT_TRUE(append_pkt_line(out, line));
    return out;
}

std::string band(char b, std::string_view data) {
    std::string out;
    EXPECT_TRUE(append_pkt(out, std::string(1, b) + std::string(data)));
    return out;
}

const std::string k_a(40, 'a'), k_b(40, 'b'), k_c(40, 'c'), k_d(40, 'd');

std::string v2_advertisement(std::string_view extra = "") {
    return pkt("version 2") + pkt("agent=git/2.39.5") + pkt("ls-refs=unborn") +
           pkt("fetch=shallow wait-for-done") + pkt("server-option") + std::string(extra) + "0000";
}

// A scripted server: the advertisement, then one canned response per request,
// delivered in small chunks; requests are recorded.
class FakeConnection final : public Connection {
  public:
    FakeConnection(std::string advertisement, std::deque<std::string> responses,
                   std::vector<std::string>* requests)
        : m_advertisement(std::move(advertisement)), m_responses(std::move(responses)), m_requests(requests) {
    }
    Status read_advertisement(const ResponseHandler& handler) override {
        return deliver(m_advertisement, handler);
    }
    Status request(std::string_view body, const ResponseHandler& handler) override {
        m_requests->emplace_back(body);
        if (m_responses.empty())
            return fail(Error::git("fake: no response scripted"));
        std::string response = std::move(m_responses.front());
        m_responses.pop_front();
        return deliver(response, handler);
    }
    Status close() override { return {}; }
    [[nodiscard]] std::string describe() const override { return "fake"; }

  private:
    static Status deliver(std::string_view bytes, const ResponseHandler& handler) {
        for (std::size_t pos = 0; pos < bytes.size(); pos += 5) {
            auto chunk = bytes.substr(pos, 5);
            auto done = handler(std::as_bytes(std::span<const char>(chunk.data(), chunk.size())));
            if (!done)
                return fail(done.error());
            if (*done)
                return {};
        }
        return fail(Error::git("fake: the server closed the connection early"));
    }
    std::string m_advertisement;
    std::deque<std::string> m_responses;
    std::vector<std::string>* m_requests;
};

Result<ProtocolClient> fake_client(std::string advertisement, std::deque<std::string> responses,
                                   std::vector<std::string>* requests) {
    return ProtocolClient::open(
        std::make_unique<FakeConnection>(std::move(advertisement), std::move(responses), requests));
}

Result<ServerCapabilities> parse_advertisement(std::string_view bytes) {
    AdvertisementParser parser;
    auto done = parser.feed(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
    if (!done)
        return fail(done.error());
    if (!*done)
        return fail(Error::git("incomplete"));
    return parser.capabilities();
}

} // namespace

TEST(Advertisement, ParsesV2Capabilities) {
    auto caps = parse_advertisement(v2_advertisement(pkt("object-format=sha256")));
    ASSERT_TRUE(caps) << caps.error().message;
    EXPECT_EQ(caps->version, 2);
    EXPECT_EQ(caps->object_format, "sha256");
    EXPECT_TRUE(caps->object_format_advertised);
    EXPECT_TRUE(caps->ls_refs_supports("unborn"));
    EXPECT_TRUE(caps->fetch_supports("shallow"));
    EXPECT_FALSE(caps->fetch_supports("filter"));
    EXPECT_EQ(caps->agent, "git/2.39.5");
}

TEST(Advertisement, SkipsTheSmartHttpServiceHeader) {
    auto caps = parse_advertisement(pkt("# service=git-upload-pack") + "0000" + v2_advertisement());
    ASSERT_TRUE(caps) << caps.error().message;
    EXPECT_EQ(caps->version, 2);
    EXPECT_EQ(caps->object_format, "sha1");
}

TEST(Advertisement, RecognisesOlderProtocols) {
    std::string v0 = k_a + " HEAD";
    v0 += '\0';
    v0 += "multi_ack side-band-64k\n";
    auto caps = parse_advertisement(pkt(v0));
    ASSERT_TRUE(caps);
    EXPECT_EQ(caps->version, 0);
    caps = parse_advertisement(pkt("version 1") + pkt(k_a + " refs/heads/main"));
    ASSERT_TRUE(caps);
    EXPECT_EQ(caps->version, 1);
}

TEST(Advertisement, ABareFlushIsAnEmptyV0Repository) {
    // Dulwich's answer for a repository without refs; git's client accepts it.
    auto caps = parse_advertisement("0000");
    ASSERT_TRUE(caps) << caps.error().message;
    EXPECT_EQ(caps->version, 0);
    caps = parse_advertisement(pkt("# service=git-upload-pack") + "0000" + "0000");
    ASSERT_TRUE(caps) << caps.error().message;
    EXPECT_EQ(caps->version, 0);
    std::vector<std::string> requests;
    auto client = fake_client("0000", {}, &requests);
    ASSERT_FALSE(client);
    EXPECT_TRUE(is_not_v2_error(client.error())) << client.error().message;
}

TEST(ProtocolClient, FetchRefusesAMalformedShallowLine) {
    std::vector<std::string> requests;
    std::string response =
        pkt("shallow-info") + pkt("shallow zz") + "0001" + pkt("packfile") + band(1, "PACK") + "0000";
    auto client = fake_client(v2_advertisement(), {response}, &requests);
    ASSERT_TRUE(client);
    auto fetched = client->fetch({.wants = {k_a}}, [](std::string_view) -> Status { return {}; }, {});
    ASSERT_FALSE(fetched);
    EXPECT_NE(fetched.error().message.find("bad shallow line"), std::string::npos);
}

TEST(Advertisement, ReportsServerErrorsAndGarbage) {
    auto caps = parse_advertisement(pkt("ERR access denied or repository not exported: /x"));
    ASSERT_FALSE(caps);
    EXPECT_NE(caps.error().message.find("access denied"), std::string::npos);
    EXPECT_FALSE(parse_advertisement("<html>"));
    EXPECT_FALSE(parse_advertisement(pkt("version 2") + pkt("object-format=md5") + "0000"));
}

TEST(ProtocolClient, RefusesAServerWithoutV2) {
    std::vector<std::string> requests;
    auto client = fake_client(pkt(k_a + " HEAD"), {}, &requests);
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error().kind, ErrorKind::Git);
    EXPECT_NE(client.error().message.find("protocol v2"), std::string::npos);
}

TEST(ProtocolClient, LsRefsSendsPrefixesAndParsesAttributes) {
    std::vector<std::string> requests;
    std::string response = pkt(k_a + " HEAD symref-target:refs/heads/main") + pkt(k_a + " refs/heads/main") +
                           pkt(k_b + " refs/tags/v1 peeled:" + k_a) + "0000";
    auto client = fake_client(v2_advertisement(), {response}, &requests);
    ASSERT_TRUE(client) << client.error().message;
    auto refs = client->ls_refs(ref_prefixes_for({"refs/heads/*", "refs/tags/*", "refs/heads/main"}));
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_EQ(refs->head, "refs/heads/main");
    EXPECT_EQ(refs->head_oid, k_a);
    ASSERT_EQ(refs->refs.size(), 2u);
    EXPECT_EQ(refs->refs["refs/tags/v1"], (RefTarget{k_b, k_a}));
    EXPECT_EQ(refs->refs["refs/heads/main"], (RefTarget{k_a, ""}));
    ASSERT_EQ(requests.size(), 1u);
    const std::string& req = requests[0];
    EXPECT_TRUE(req.starts_with(pkt("command=ls-refs")));
    EXPECT_NE(req.find(pkt("unborn")), std::string::npos);
    EXPECT_NE(req.find(pkt("ref-prefix HEAD")), std::string::npos);
    EXPECT_NE(req.find(pkt("ref-prefix refs/heads/")), std::string::npos);
    EXPECT_NE(req.find(pkt("ref-prefix refs/tags/")), std::string::npos);
    EXPECT_EQ(req.find(pkt("ref-prefix refs/heads/main")), std::string::npos); // covered by refs/heads/
    EXPECT_EQ(req.find("object-format"), std::string::npos);                   // not advertised
    EXPECT_TRUE(req.ends_with("0000"));
}

TEST(ProtocolClient, LsRefsUnbornHead) {
    auto parsed = parse_ls_refs_lines({"unborn HEAD symref-target:refs/heads/trunk"}, "sha1");
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(parsed->head_unborn);
    EXPECT_EQ(parsed->head, "refs/heads/trunk");
    EXPECT_FALSE(parsed->head_oid);
    EXPECT_TRUE(parsed->refs.empty());
    EXPECT_FALSE(parse_ls_refs_lines({"zz refs/heads/x"}, "sha1"));
    EXPECT_FALSE(parse_ls_refs_lines({k_a + " refs/heads/x"}, "sha256"));
    EXPECT_FALSE(parse_ls_refs_lines({k_a}, "sha1"));
}

TEST(ProtocolClient, FetchStreamsBandOneAndSkipsOtherSections) {
    std::vector<std::string> requests;
    std::string response = pkt("acknowledgments") + pkt("NAK") + "0001" + pkt("shallow-info") +
                           pkt("shallow " + k_c) + "0001" + pkt("packfile") +
                           band(2, "Enumerating objects\n") + band(1, "PACK") + band(1, "rest") + "0000";
    auto client = fake_client(v2_advertisement(pkt("object-format=sha1")), {response}, &requests);
    ASSERT_TRUE(client);
    std::string pack, progress;
    auto fetched = client->fetch(
        {.wants = {k_a, k_b}, .haves = {k_c}},
        [&](std::string_view d) -> Status {
            pack += d;
            return {};
        },
        [&](std::string_view d) -> Status {
            progress += d;
            return {};
        });
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_EQ(pack, "PACKrest");
    EXPECT_EQ(fetched->pack_bytes, 8u);
    EXPECT_EQ(progress, "Enumerating objects\n");
    EXPECT_EQ(fetched->acknowledgments, std::vector<std::string>{"NAK"});
    // The server's repository is shallow: its boundary is reported.
    EXPECT_EQ(fetched->shallow, std::vector<std::string>{k_c});
    const std::string& req = requests[0];
    for (const auto& line :
         {"command=fetch", "object-format=sha1", "thin-pack", "no-progress", "ofs-delta", "done"})
        EXPECT_NE(req.find(pkt(line)), std::string::npos) << line;
    EXPECT_NE(req.find(pkt("want " + k_a)), std::string::npos);
    EXPECT_NE(req.find(pkt("have " + k_c)), std::string::npos);
    EXPECT_LT(req.find("0001"), req.find("want"));
}

TEST(ProtocolClient, FetchReportsRemoteErrors) {
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(),
                              {pkt("packfile") + band(3, "upload-pack: not our ref " + k_a + "\n") + "0000",
                               pkt("ERR upload-pack: not our ref") + "0000",
                               pkt("acknowledgments") + pkt("NAK") + "0000", pkt("bogus-section") + "0000"},
                              &requests);
    ASSERT_TRUE(client);
    BandSink sink = [](std::string_view) -> Status { return {}; };
    for (int i = 0; i < 4; ++i) {
        auto fetched = client->fetch({.wants = {k_a}}, sink, {});
        ASSERT_FALSE(fetched) << i;
        EXPECT_EQ(fetched.error().kind, ErrorKind::Git);
        if (i < 2) {
            EXPECT_NE(fetched.error().message.find("not our ref"), std::string::npos);
        }
    }
    EXPECT_FALSE(client->fetch({.wants = {"nothex"}}, sink, {}));
}

TEST(ProtocolClient, LsRefsStopsPastMaxRefs) {
    std::string response = pkt(k_a + " HEAD symref-target:refs/heads/main");
    for (int i = 0; i < 5; ++i)
        response += pkt(k_a + " refs/heads/b" + std::to_string(i));
    response += "0000";
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(), {response, response}, &requests);
    ASSERT_TRUE(client);
    auto refs = client->ls_refs({}, 4);
    ASSERT_FALSE(refs);
    EXPECT_EQ(refs.error().kind, ErrorKind::Git);
    EXPECT_NE(refs.error().message.find("more than 4 refs (options.max_refs)"), std::string::npos)
        << refs.error().message;
    // HEAD does not count against the limit: exactly 5 refs pass a limit of 5.
    auto at_limit = client->ls_refs({}, 5);
    ASSERT_TRUE(at_limit) << at_limit.error().message;
    EXPECT_EQ(at_limit->refs.size(), 5u);
}

TEST(ProtocolClient, FetchStopsPastMaxPackBytes) {
    std::string response = pkt("packfile") + band(1, "PACK") + band(1, "0123456789") + "0000";
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(), {response, response}, &requests);
    ASSERT_TRUE(client);
    std::string pack;
    BandSink sink = [&](std::string_view d) -> Status {
        pack += d;
        return {};
    };
    auto fetched = client->fetch({.wants = {k_a}, .max_pack_bytes = 13}, sink, {});
    ASSERT_FALSE(fetched);
    EXPECT_EQ(fetched.error().kind, ErrorKind::Git);
    EXPECT_NE(fetched.error().message.find("larger than 13 bytes (options.max_pack_bytes)"),
              std::string::npos)
        << fetched.error().message;
    EXPECT_EQ(pack, "PACK"); // nothing past the limit reached the sink
    pack.clear();
    auto exact = client->fetch({.wants = {k_a}, .max_pack_bytes = 14}, sink, {});
    ASSERT_TRUE(exact) << exact.error().message;
    EXPECT_EQ(pack, "PACK0123456789");
}

TEST(RefPrefixes, CollapsesCoveredPrefixes) {
    EXPECT_EQ(ref_prefixes_for({"refs/tags/*", "refs/heads/*", "refs/heads/x", "refs/*"}),
              std::vector<std::string>{"refs/"});
    EXPECT_EQ(ref_prefixes_for({"refs/heads/main", "refs/tags/*"}),
              (std::vector<std::string>{"refs/heads/main", "refs/tags/"}));
    EXPECT_TRUE(ref_prefixes_for({}).empty());
}

TEST(IncrementalPlan, WantsOnlyNewTipsAndUsesPeeledPrerequisites) {
    const std::string k_e(40, 'e'), k_f(40, 'f');
    RefMap previous{{"refs/heads/main", {k_a, ""}},
                    {"refs/tags/v1", {k_b, k_a}},
                    {"refs/heads/old", {k_c, ""}},
                    {"refs/tags/on-a-tree", {k_e, ""}},
                    {"refs/tags/annotated-tree", {k_f, k_e}}};
    RefMap current{{"refs/heads/main", {k_d, ""}},        // moved: want
                   {"refs/tags/v1", {k_b, k_a}},          // unchanged
                   {"refs/heads/new-on-old", {k_a, ""}}}; // new ref on a known commit: no want
    auto plan = plan_incremental(previous, current);
    EXPECT_FALSE(plan.unchanged);
    EXPECT_EQ(plan.wants, std::vector<std::string>{k_d});
    EXPECT_EQ(plan.haves, (std::vector<std::string>{k_a, k_b, k_c, k_e, k_f}));
    // Tags may point at trees or blobs, which git refuses as prerequisites.
    EXPECT_EQ(plan.prerequisites, (std::vector<std::string>{k_a, k_c}));

    auto same = plan_incremental(previous, previous);
    EXPECT_TRUE(same.unchanged);
    EXPECT_TRUE(same.wants.empty());

    RefMap deleted{{"refs/heads/main", {k_a, ""}}};
    auto refs_only = plan_incremental(previous, deleted);
    EXPECT_FALSE(refs_only.unchanged);
    EXPECT_TRUE(refs_only.wants.empty());
}

TEST(ProtocolClient, RandomFetchResponsesNeverCrash) {
    std::mt19937 rng(1234);
    const std::vector<std::string> pieces{pkt("packfile"),
                                          pkt("acknowledgments"),
                                          pkt("NAK"),
                                          pkt("ready"),
                                          pkt("shallow-info"),
                                          pkt("wanted-refs"),
                                          pkt("packfile-uris"),
                                          pkt("ERR boom"),
                                          band(1, "PACK"),
                                          band(2, "progress"),
                                          band(3, "fatal"),
                                          band(9, "x"),
                                          "0001",
                                          "0002",
                                          "0003",
                                          "zzzz",
                                          "ffff",
                                          std::string("0005\x01", 5),
                                          std::string("0004")};
    BandSink sink = [](std::string_view) -> Status { return {}; };
    for (int round = 0; round < 500; ++round) {
        std::string response;
        auto count = rng() % 8;
        for (unsigned i = 0; i < count; ++i)
            response += pieces[rng() % pieces.size()];
        if (rng() % 2)
            response += "0000";
        std::vector<std::string> requests;
        auto client = fake_client(v2_advertisement(), {response}, &requests);
        ASSERT_TRUE(client);
        auto fetched = client->fetch({.wants = {k_a}}, sink, sink);
        if (!fetched) {
            EXPECT_FALSE(fetched.error().message.empty());
        }
    }
}

// The memory budget (docs/SECURITY.md): every line a server sends is counted.
TEST(ProtocolBudget, LsRefsStopsAtTheFirstMalformedLine) {
    const std::string empty_packets = std::string("0004") + "0004" + "0004" + "0000";
    const std::string no_space = pkt(std::string(1000, 'x')) + "0000";
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(), {empty_packets, no_space}, &requests);
    ASSERT_TRUE(client);
    for (int i = 0; i < 2; ++i) {
        auto refs = client->ls_refs({}, 1000);
        ASSERT_FALSE(refs) << i;
        EXPECT_EQ(refs.error().kind, ErrorKind::Git);
        EXPECT_NE(refs.error().message.find("bad ls-refs line"), std::string::npos) << refs.error().message;
    }
}

TEST(ProtocolBudget, LsRefsCountsLinesOutsideRefsAndRepeatedHeads) {
    std::string outside;
    for (int i = 0; i < 5; ++i)
        outside += pkt(k_a + " not-a-ref/" + std::to_string(i));
    outside += "0000";
    std::string heads;
    for (int i = 0; i < 5; ++i)
        heads += pkt(k_a + " HEAD symref-target:refs/heads/main");
    heads += "0000";
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(), {outside, heads, heads}, &requests);
    ASSERT_TRUE(client);
    for (int i = 0; i < 2; ++i) {
        auto refs = client->ls_refs({}, 3);
        ASSERT_FALSE(refs) << i;
        EXPECT_NE(refs.error().message.find("more than 3 refs (options.max_refs)"), std::string::npos)
            << refs.error().message;
    }
    // One HEAD is free: five HEAD lines are four counted lines.
    auto four = client->ls_refs({}, 4);
    ASSERT_TRUE(four) << four.error().message;
}

TEST(ProtocolBudget, LsRefsLineLengthIsBounded) {
    const std::string name = "refs/heads/" + std::string(k_max_ls_refs_line, 'n');
    LsRefsResult out;
    auto s = parse_ls_refs_line(k_a + " " + name, "sha1", out);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message.find("ls-refs line of"), std::string::npos) << s.error().message;
    EXPECT_TRUE(out.refs.empty());
    const std::string fits = "refs/heads/" + std::string(k_max_ls_refs_line - 100, 'n');
    ASSERT_TRUE(parse_ls_refs_line(k_a + " " + fits, "sha1", out));
    EXPECT_EQ(out.refs.count(fits), 1u);
}

TEST(ProtocolBudget, AdvertisementBytesAreBounded) {
    std::string big = pkt("version 2");
    const std::string line = pkt("x-junk=" + std::string(60000, 'j'));
    while (big.size() <= k_max_advertisement_bytes)
        big += line;
    big += "0000";
    auto caps = parse_advertisement(big);
    ASSERT_FALSE(caps);
    EXPECT_NE(caps.error().message.find("capability advertisement larger than"), std::string::npos)
        << caps.error().message;
    // Empty lines count too.
    std::string empties = pkt("version 2");
    for (std::size_t i = 0; i <= k_max_advertisement_lines; ++i)
        empties += "0004";
    EXPECT_FALSE(parse_advertisement(empties + "0000"));
}

TEST(ProtocolBudget, SectionsBeforeThePackAreBounded) {
    const FetchRequest request{.wants = {k_a}, .haves = {k_b, k_c}};
    EXPECT_EQ(pre_pack_budget(request), k_max_pre_pack_bytes + 3 * k_pre_pack_bytes_per_oid);
    std::string flood = pkt("acknowledgments");
    const std::string ack = pkt("ACK " + k_b + " " + std::string(60000, 'a'));
    while (flood.size() <= pre_pack_budget(request))
        flood += ack;
    flood += "0001" + pkt("packfile") + band(1, "PACK") + "0000";
    const std::string fine =
        pkt("acknowledgments") + pkt("ACK " + k_b) + "0001" + pkt("packfile") + band(1, "PACK") + "0000";
    std::vector<std::string> requests;
    auto client = fake_client(v2_advertisement(), {flood, fine}, &requests);
    ASSERT_TRUE(client);
    std::string pack;
    BandSink sink = [&](std::string_view d) -> Status {
        pack += d;
        return {};
    };
    auto flooded = client->fetch(request, sink, {});
    ASSERT_FALSE(flooded);
    EXPECT_EQ(flooded.error().kind, ErrorKind::Git);
    EXPECT_NE(flooded.error().message.find("before the packfile section"), std::string::npos)
        << flooded.error().message;
    EXPECT_EQ(pack, "");
    auto fetched = client->fetch(request, sink, {});
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_EQ(pack, "PACK");
    EXPECT_EQ(fetched->acknowledgments.size(), 1u);
}

namespace {

// An empty version 2 pack with its SHA-1 trailer.
std::string empty_pack() {
    std::string pack("PACK\0\0\0\2\0\0\0\0", 12);
    for (std::size_t i = 0; i < 40; i += 2)
        pack.push_back(static_cast<char>(
            std::stoi(std::string("029d08823bd8a8eab510ad6ac75c823cfd3ed31e").substr(i, 2), nullptr, 16)));
    return pack;
}

// Bytes written, kept in memory.
class StringWriter final : public ObjectWriter {
  public:
    Status write(std::span<const std::byte> data) override {
        bytes.append(reinterpret_cast<const char*>(data.data()), data.size());
        return {};
    }
    Status commit() override { return {}; }
    void abort() override { bytes.clear(); }
    std::string bytes;
};

bool has_line(const std::string& request, const std::string& line) {
    return request.find(pkt(line)) != std::string::npos;
}

const std::string k_e(40, 'e'), k_f(40, 'f');

// ls-refs: main moved a -> c, pages b -> d (the server lost b), tag v1 unchanged.
std::string moved_listing() {
    return pkt(k_c + " refs/heads/main") + pkt(k_d + " refs/heads/pages") + pkt(k_f + " refs/tags/v1") +
           "0000";
}
const RefMap k_previous{
    {"refs/heads/main", {k_a, ""}}, {"refs/heads/pages", {k_b, ""}}, {"refs/tags/v1", {k_f, ""}}};

// An incremental from k_previous with `extras` against a fake server that
// lists moved_listing() and answers the fetches with `responses`; requests
// are recorded.
Result<StreamResult> incremental_with(const std::string& advertisement, std::deque<std::string> responses,
                                      std::vector<std::string>& requests, const IncrementalExtras& extras) {
    responses.push_front(moved_listing());
    auto client = fake_client(advertisement, std::move(responses), &requests);
    if (!client)
        return fail(client.error());
    auto listed = ListedRemote::open(StreamRequest{}, std::move(*client));
    if (!listed)
        return fail(listed.error());
    StringWriter out;
    auto result = listed->incremental_bundle(k_previous, out, {}, extras);
    if (result && result->pack_written && !out.bytes.starts_with("# v2 git bundle\n"))
        return fail(Error::internal("no bundle written"));
    return result;
}

// The same with one fetch, answered with `response`.
Result<StreamResult> incremental_with(const std::string& advertisement, std::string response,
                                      std::vector<std::string>& requests, const IncrementalExtras& extras) {
    return incremental_with(advertisement, std::deque<std::string>{std::move(response)}, requests, extras);
}

// The same, negotiating in rounds with `more_haves` (none by default).
Result<StreamResult> negotiate(const std::string& advertisement, std::deque<std::string> responses,
                               std::vector<std::string>& requests, MoreHaves more_haves = {}) {
    if (!more_haves)
        more_haves = [](const std::vector<std::string>&, int) { return std::vector<std::string>{}; };
    return incremental_with(advertisement, std::move(responses), requests,
                            IncrementalExtras{.more_haves = more_haves});
}

const std::string k_pack_response = pkt("packfile") + band(1, empty_pack()) + "0000";

} // namespace

TEST(Negotiation, ParsesAcknowledgmentsAndRefusesWhatWasNotOffered) {
    auto acked =
        parse_acknowledgments({"ACK " + k_b, "ACK " + k_a, "ACK " + k_a, "ready"}, {k_a, k_b, k_c}, "sha1");
    ASSERT_TRUE(acked) << acked.error().message;
    EXPECT_EQ(acked->common, (std::vector<std::string>{k_a, k_b}));
    EXPECT_TRUE(acked->ready);
    auto nak = parse_acknowledgments({"NAK"}, {k_a}, "sha1");
    ASSERT_TRUE(nak);
    EXPECT_TRUE(nak->common.empty());
    EXPECT_FALSE(nak->ready);
    // Hostile answers: an ACK of an object never offered, a short oid, garbage.
    EXPECT_FALSE(parse_acknowledgments({"ACK " + k_d}, {k_a}, "sha1"));
    EXPECT_FALSE(parse_acknowledgments({"ACK " + k_a.substr(1)}, {k_a}, "sha1"));
    EXPECT_FALSE(parse_acknowledgments({"ACK " + std::string(64, 'a')}, {k_a}, "sha1"));
    EXPECT_FALSE(parse_acknowledgments({"ACKNOWLEDGED"}, {k_a}, "sha1"));
}

TEST(Negotiation, LostTipsAreOldTipsOfMovedBranchesTheServerLacks) {
    RefMap previous{{"refs/heads/main", {k_a, ""}},
                    {"refs/heads/reset", {k_b, ""}},
                    {"refs/heads/gone", {k_c, ""}},
                    {"refs/heads/same", {k_d, ""}},
                    {"refs/tags/moved", {k_e, k_a}}};
    RefMap current{{"refs/heads/main", {k_f, ""}},
                   {"refs/heads/reset", {k_f, ""}},
                   {"refs/heads/same", {k_d, ""}},
                   {"refs/tags/moved", {k_f, ""}}};
    // Deleted, unchanged refs and tags (which may not hold commits) are never lost.
    EXPECT_EQ(lost_tips(previous, current, {}), (std::vector<std::string>{k_a, k_b}));
    EXPECT_EQ(lost_tips(previous, current, {k_a}), std::vector<std::string>{k_b});
    EXPECT_TRUE(lost_tips(previous, current, {k_a, k_b}).empty());
}

TEST(ProtocolClient, ANegotiationRoundOmitsDoneAndMayEndWithoutAPack) {
    std::vector<std::string> requests;
    auto client = fake_client(
        v2_advertisement(),
        {pkt("acknowledgments") + pkt("ACK " + k_b) + "0000", pkt("acknowledgments") + "0000"}, &requests);
    ASSERT_TRUE(client);
    auto no_pack = [](std::string_view) -> Status { return fail(Error::internal("no pack expected")); };
    auto fetched = client->fetch({.wants = {k_a}, .haves = {k_b}, .done = false}, no_pack, {});
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_FALSE(fetched->pack_received);
    EXPECT_EQ(fetched->acknowledgments, std::vector<std::string>{"ACK " + k_b});
    EXPECT_FALSE(has_line(requests[0], "done"));
    EXPECT_TRUE(has_line(requests[0], "have " + k_b));
    // The server advertises wait-for-done, but this round did not ask for it.
    EXPECT_FALSE(has_line(requests[0], "wait-for-done"));
    // A round answered with neither acknowledgments nor a pack is a protocol error.
    EXPECT_FALSE(client->fetch({.wants = {k_a}, .haves = {k_b}, .done = false}, no_pack, {}));
}

TEST(Negotiation, AServerWithoutWaitForDoneMaySendThePackInTheFirstRound) {
    std::vector<std::string> requests;
    std::string older_server =
        pkt("version 2") + pkt("agent=git/2.30.0") + pkt("ls-refs") + pkt("fetch=shallow") + "0000";
    int asked = 0;
    auto result = negotiate(
        older_server, {pkt("acknowledgments") + pkt("ACK " + k_a) + pkt("ready") + "0001" + k_pack_response},
        requests, [&](const std::vector<std::string>&, int) {
            ++asked;
            return std::vector<std::string>{};
        });
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->pack_written);
    EXPECT_EQ(result->negotiation_rounds, 1);
    EXPECT_EQ(asked, 0);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_FALSE(has_line(requests[1], "done"));
    EXPECT_FALSE(has_line(requests[1], "wait-for-done"));
}

TEST(Negotiation, LostTipsAreAnsweredWithOlderCommitsAndTheNextRoundSaysDone) {
    std::vector<std::string> requests;
    // Round 1: pages' old tip b is gone; round 2 (done) brings the pack.
    std::string not_ready = pkt("acknowledgments") + pkt("ACK " + k_a) + pkt("ACK " + k_f) + "0000";
    const std::string older1(40, '1'), older2(40, '2');
    std::vector<std::pair<std::vector<std::string>, int>> asked;
    auto result = negotiate(v2_advertisement(), {not_ready, k_pack_response}, requests,
                            [&](const std::vector<std::string>& lost, int round) {
                                asked.emplace_back(lost, round);
                                // Duplicates, haves already sent and malformed oids are dropped.
                                return std::vector<std::string>{older1, older1, k_a, "not-an-oid", older2};
                            });
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->pack_written);
    EXPECT_EQ(result->negotiation_rounds, k_max_negotiation_rounds);
    EXPECT_EQ(result->more_haves, 2u);
    EXPECT_EQ(result->lost, std::vector<std::string>{k_b});
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked[0], std::make_pair(std::vector<std::string>{k_b}, 1));
    ASSERT_EQ(requests.size(), 3u);
    // The first round asks the server (which advertises it) to wait for done: every ACK comes back.
    EXPECT_FALSE(has_line(requests[1], "done"));
    EXPECT_TRUE(has_line(requests[1], "wait-for-done"));
    EXPECT_FALSE(has_line(requests[1], "have " + older1));
    // Stateless: the last round carries every have so far.
    EXPECT_TRUE(has_line(requests[2], "done"));
    for (const auto& have : {k_a, k_b, k_f, older1, older2})
        EXPECT_TRUE(has_line(requests[2], "have " + have)) << have;
}

TEST(Negotiation, NothingMoreToOfferSendsDoneAtOnce) {
    std::vector<std::string> requests;
    auto result = negotiate(v2_advertisement(),
                            {pkt("acknowledgments") + pkt("NAK") + "0000", k_pack_response}, requests);
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->negotiation_rounds, 2);
    EXPECT_EQ(result->lost, (std::vector<std::string>{k_a, k_b}));
    EXPECT_TRUE(has_line(requests[2], "done"));
}

TEST(Negotiation, AnAckOfAnUnofferedObjectStopsTheRun) {
    std::vector<std::string> requests;
    auto result =
        negotiate(v2_advertisement(), {pkt("acknowledgments") + pkt("ACK " + k_e) + "0000"}, requests);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message.find("not offered"), std::string::npos) << result.error().message;
}

// ---- The walk anchor (WalkAnchor): a shallow line that turns a git server's bitmap off.

namespace {

const WalkAnchor k_anchor{k_a, {k_e, std::string(40, '1')}};

} // namespace

TEST(WalkAnchor, GoesToAGitServerAsAShallowLineWithItselfAndItsParentsAsHaves) {
    std::vector<std::string> requests;
    // git answers a request with shallow lines with a shallow-info section, empty here.
    auto result = incremental_with(v2_advertisement(), pkt("shallow-info") + "0001" + k_pack_response,
                                   requests, IncrementalExtras{.anchor = k_anchor});
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_TRUE(result->pack_written);
    EXPECT_TRUE(result->anchor_sent);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_TRUE(has_line(requests[1], "shallow " + k_a));
    for (const auto& have : {k_a, k_e, std::string(40, '1')})
        EXPECT_TRUE(has_line(requests[1], "have " + have)) << have;
    EXPECT_TRUE(has_line(requests[1], "done"));
    // The parents go first and the anchor last (anchored_haves): git's upload-pack
    // drops a have whose child it read before, and the anchor's parents are cut.
    const auto& body = requests[1];
    const auto first_parent = body.find(pkt("have " + k_e));
    const auto second_parent = body.find(pkt("have " + std::string(40, '1')));
    const auto anchor = body.find(pkt("have " + k_a));
    for (const auto& other : {k_b, k_f}) {
        const auto at = body.find(pkt("have " + other));
        ASSERT_NE(at, std::string::npos) << other;
        EXPECT_LT(first_parent, at);
        EXPECT_LT(second_parent, at);
        EXPECT_LT(at, anchor);
    }
}

TEST(WalkAnchor, AnchoredHavesPutTheParentsFirstAndTheAnchorLastOnce) {
    const WalkAnchor anchor{k_c, {k_f, k_b}};
    EXPECT_EQ(anchored_haves({k_a, k_b, k_c, k_d}, anchor),
              (std::vector<std::string>{k_f, k_b, k_a, k_d, k_c}));
    EXPECT_EQ(anchored_haves({}, WalkAnchor{k_c, {}}), std::vector<std::string>{k_c});
}

TEST(WalkAnchor, ItsOwnShallowLineEchoedBackIsNoBoundaryButAnotherIsRefused) {
    std::vector<std::string> requests;
    auto echoed = incremental_with(v2_advertisement(),
                                   pkt("shallow-info") + pkt("shallow " + k_a) + "0001" + k_pack_response,
                                   requests, IncrementalExtras{.anchor = k_anchor});
    ASSERT_TRUE(echoed) << echoed.error().message;
    EXPECT_TRUE(echoed->pack_written);
    EXPECT_TRUE(echoed->shallow.empty());
    // A boundary the server names on its own is a shallow upstream, refused as before.
    requests.clear();
    auto other = incremental_with(v2_advertisement(),
                                  pkt("shallow-info") + pkt("shallow " + k_d) + "0001" + k_pack_response,
                                  requests, IncrementalExtras{.anchor = k_anchor});
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message.find("shallow"), std::string::npos) << other.error().message;
}

TEST(WalkAnchor, OnlyGitServersThatTakeShallowLinesGetOne) {
    for (const std::string& advertisement :
         {pkt("version 2") + pkt("agent=JGit/6.5.0") + pkt("ls-refs") + pkt("fetch=shallow") + "0000",
          pkt("version 2") + pkt("agent=git/2.39.5") + pkt("ls-refs") + pkt("fetch") + "0000",
          pkt("version 2") + pkt("ls-refs") + pkt("fetch=shallow") + "0000"}) {
        std::vector<std::string> requests;
        auto result =
            incremental_with(advertisement, k_pack_response, requests, IncrementalExtras{.anchor = k_anchor});
        ASSERT_TRUE(result) << result.error().message;
        EXPECT_FALSE(result->anchor_sent);
        ASSERT_EQ(requests.size(), 2u);
        EXPECT_EQ(requests[1].find("shallow "), std::string::npos) << advertisement;
        EXPECT_FALSE(has_line(requests[1], "have " + k_e)); // nor its parents
    }
    // A malformed anchor is never sent, whatever the server.
    std::vector<std::string> requests;
    auto result = incremental_with(v2_advertisement(), k_pack_response, requests,
                                   IncrementalExtras{.anchor = WalkAnchor{"not-an-oid", {}}});
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_FALSE(result->anchor_sent);
    EXPECT_EQ(requests[1].find("shallow "), std::string::npos);
}

TEST(WalkAnchor, AFetchRefusesShallowLinesTheServerCannotTakeOrThatAreMalformed) {
    auto no_pack = [](std::string_view) -> Status { return {}; };
    std::vector<std::string> requests;
    auto without = fake_client(pkt("version 2") + pkt("ls-refs") + pkt("fetch") + "0000", {}, &requests);
    ASSERT_TRUE(without);
    EXPECT_FALSE(without->fetch({.wants = {k_b}, .shallow = {k_a}}, no_pack, {}));
    auto with = fake_client(v2_advertisement(), {}, &requests);
    ASSERT_TRUE(with);
    EXPECT_FALSE(with->fetch({.wants = {k_b}, .shallow = {"zz"}}, no_pack, {}));
    EXPECT_TRUE(requests.empty()); // nothing was sent
}

TEST(WalkAnchor, TheNextOneIsTheFirstWantedCommitOfThePackWithFewParents) {
    std::vector<std::string> nine(9, k_f);
    std::unordered_map<std::string, std::vector<std::string>> commits{
        {k_b, nine}, {k_c, {k_e}}, {k_d, {}}, {k_e, {k_f}}};
    // a: a tag object (not a commit of the pack); b: an octopus of 9; c: the first that fits.
    EXPECT_EQ(choose_walk_anchor({k_a, k_b, k_c, k_d}, commits), (WalkAnchor{k_c, {k_e}}));
    EXPECT_EQ(choose_walk_anchor({k_d}, commits), (WalkAnchor{k_d, {}})); // a root commit does too
    EXPECT_EQ(choose_walk_anchor({k_a}, commits), std::nullopt);
    EXPECT_TRUE(valid_walk_anchor(k_anchor, "sha1"));
    EXPECT_FALSE(valid_walk_anchor(k_anchor, "sha256"));
    EXPECT_FALSE(valid_walk_anchor(WalkAnchor{k_a, {k_a}}, "sha1"));
    EXPECT_FALSE(valid_walk_anchor(WalkAnchor{k_a, nine}, "sha1"));
}

// ---- The smart-HTTP capability memo (CapabilityMemo): one request less per repository.

namespace {

const std::string k_sha256_a(64, 'a');

// A smart-HTTP-like server: stateless, every advertisement read and every
// request counted; each request gets the next scripted answer or error.
class StatelessConnection final : public Connection {
  public:
    struct Log {
        int advertisements = 0;
        std::vector<std::string> requests;
    };
    StatelessConnection(std::string advertisement, std::deque<Result<std::string>> responses, Log* log,
                        bool by_origin = true)
        : m_advertisement(std::move(advertisement)), m_responses(std::move(responses)), m_log(log),
          m_by_origin(by_origin) {}
    Status read_advertisement(const ResponseHandler& handler) override {
        ++m_log->advertisements;
        return deliver(m_advertisement, handler);
    }
    Status request(std::string_view body, const ResponseHandler& handler) override {
        m_log->requests.emplace_back(body);
        if (m_responses.empty())
            return fail(Error::git("fake: no response scripted"));
        auto response = std::move(m_responses.front());
        m_responses.pop_front();
        if (!response)
            return fail(response.error());
        return deliver(*response, handler);
    }
    Status close() override { return {}; }
    [[nodiscard]] std::string describe() const override { return "fake-http"; }
    [[nodiscard]] bool stateless() const override { return true; }
    [[nodiscard]] bool advertised_by_origin() const override { return m_by_origin; }

  private:
    static Status deliver(std::string_view bytes, const ResponseHandler& handler) {
        auto done = handler(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
        if (!done)
            return fail(done.error());
        if (!*done)
            return fail(Error::git("fake: the response ended early", Cause::reset));
        return {};
    }
    std::string m_advertisement;
    std::deque<Result<std::string>> m_responses;
    Log* m_log;
    bool m_by_origin;
};

const std::string k_memo_key = "http://git.example:80 digest";

std::string sha1_advertisement() {
    return v2_advertisement(pkt("object-format=sha1"));
}

std::string sha1_listing() {
    return pkt(k_a + " HEAD symref-target:refs/heads/main") + pkt(k_a + " refs/heads/main") + "0000";
}

Result<ProtocolClient> stateless_client(CapabilityMemo& memo, std::string advertisement,
                                        std::deque<Result<std::string>> responses,
                                        StatelessConnection::Log& log, bool by_origin = true) {
    return ProtocolClient::open(std::make_unique<StatelessConnection>(std::move(advertisement),
                                                                      std::move(responses), &log, by_origin),
                                MemoSlot{&memo, k_memo_key});
}

// A memo that holds what a sha1 origin advertised (as a first repository leaves it).
void fill_memo(CapabilityMemo& memo) {
    StatelessConnection::Log log;
    auto first = stateless_client(memo, sha1_advertisement(), {sha1_listing()}, log);
    ASSERT_TRUE(first) << first.error().message;
    ASSERT_TRUE(first->ls_refs({"refs/heads/"}));
    ASSERT_EQ(log.advertisements, 1);
    ASSERT_TRUE(memo.assumed(k_memo_key));
}

bool has_pkt(const std::string& request, std::string_view line) {
    return request.find(pkt(line)) != std::string::npos;
}

} // namespace

TEST(CapabilityMemo, KeysSeparateOriginsAndCredentialsAndHoldNoSecret) {
    auto key = [](std::string url, std::string user = "", std::string password = "") {
        TransportOptions options;
        options.url = std::move(url);
        options.policy.allow_http = true;
        options.username = std::move(user);
        options.password = std::move(password);
        return CapabilityMemo::key_of(options);
    };
    auto a = key("https://git.example/org/one.git", "alice", "token-a");
    ASSERT_TRUE(a);
    EXPECT_EQ(a, key("https://GIT.example:443/other/two", "alice", "token-a")); // one origin, one credential
    EXPECT_NE(a, key("https://git.example/org/one.git", "alice", "token-b"));   // another token
    EXPECT_NE(a, key("https://git.example/org/one.git", "bob", "token-a"));     // another user
    EXPECT_NE(a, key("https://git.example/org/one.git"));                       // anonymous
    EXPECT_NE(a, key("http://git.example/org/one.git", "alice", "token-a"));    // another scheme
    EXPECT_NE(a, key("https://git.example:8443/org/one.git", "alice", "token-a"));
    EXPECT_NE(a, key("https://other.example/org/one.git", "alice", "token-a"));
    EXPECT_EQ(a->find("token-a"), std::string::npos);
    // Servers of the other transports speak first: nothing to skip.
    EXPECT_FALSE(key("git://git.example/one.git"));
    EXPECT_FALSE(key("ssh://git@git.example/one.git"));
    EXPECT_FALSE(key("/srv/git/one.git"));
}

TEST(CapabilityMemo, RecordsV2AdvertisementsWithinItsBoundsAndTheLastOneWins) {
    CapabilityMemo memo;
    auto caps = parse_advertisement(sha1_advertisement());
    ASSERT_TRUE(caps);
    EXPECT_FALSE(memo.assumed("k"));
    ServerCapabilities v0;
    memo.discovered("k", v0);
    EXPECT_FALSE(memo.assumed("k"));
    memo.discovered("k", *caps);
    ASSERT_TRUE(memo.assumed("k"));
    EXPECT_EQ(memo.assumed("k")->object_format, "sha1");
    auto sha256 = parse_advertisement(v2_advertisement(pkt("object-format=sha256")));
    ASSERT_TRUE(sha256);
    memo.discovered("k", *sha256);
    EXPECT_EQ(memo.assumed("k")->object_format, "sha256");
    // An advertisement past k_max_memo_capability_bytes is not kept.
    auto large = *caps;
    large.lines.emplace_back(k_max_memo_capability_bytes, 'x');
    memo.discovered("large", large);
    EXPECT_FALSE(memo.assumed("large"));
    // At most k_max_memo_origins keys; a known key is still updated when full.
    for (std::size_t i = 0; i < k_max_memo_origins; ++i) // "k" is there already
        memo.discovered(fmt::format("origin-{}", i), *caps);
    EXPECT_FALSE(memo.assumed(fmt::format("origin-{}", k_max_memo_origins - 1)));
    EXPECT_TRUE(memo.assumed(fmt::format("origin-{}", k_max_memo_origins - 2)));
    memo.discovered("k", *caps);
    EXPECT_EQ(memo.assumed("k")->object_format, "sha1");
}

TEST(CapabilityMemo, AKeyRefusedTooOftenInARowIsNotUsedAgain) {
    CapabilityMemo memo;
    auto caps = parse_advertisement(sha1_advertisement());
    ASSERT_TRUE(caps);
    memo.discovered("k", *caps);
    for (int i = 0; i + 1 < k_max_memo_refusals; ++i)
        memo.answered("k", false);
    memo.answered("k", true); // a success starts the count again
    for (int i = 0; i + 1 < k_max_memo_refusals; ++i)
        memo.answered("k", false);
    EXPECT_TRUE(memo.assumed("k"));
    memo.answered("k", false);
    EXPECT_FALSE(memo.assumed("k"));
    memo.discovered("k", *caps); // a later discovery does not bring it back
    EXPECT_FALSE(memo.assumed("k"));
}

TEST(CapabilityMemo, OnlyGitErrorsFallBackToDiscovery) {
    EXPECT_TRUE(falls_back_to_discovery(Error::git("authentication failed (HTTP 401)", Cause::refused)));
    EXPECT_TRUE(falls_back_to_discovery(Error::git("not a smart git HTTP server")));
    EXPECT_TRUE(
        falls_back_to_discovery(remote_error("mismatched object format: server sha256; client sha1")));
    EXPECT_TRUE(falls_back_to_discovery(protocol_error("bad ls-refs line")));
    EXPECT_TRUE(falls_back_to_discovery(Error::git("the response ended early", Cause::reset)));
    EXPECT_TRUE(falls_back_to_discovery(Error::git("server error (HTTP 503)", Cause::http_5xx)));
    EXPECT_FALSE(falls_back_to_discovery(Error::timeout("no time left")));
    EXPECT_FALSE(falls_back_to_discovery(Error::interrupted("the job is stopping")));
    EXPECT_FALSE(falls_back_to_discovery(Error::internal("a bug")));
}

TEST(CapabilityMemo, LaterSessionsOfAnOriginSendLsRefsWithoutTheAdvertisement) {
    CapabilityMemo memo;
    fill_memo(memo);
    StatelessConnection::Log log;
    auto client = stateless_client(memo, sha1_advertisement(), {sha1_listing(), k_pack_response}, log);
    ASSERT_TRUE(client) << client.error().message;
    EXPECT_TRUE(client->assumed());
    auto refs = client->ls_refs({"refs/heads/"});
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_FALSE(client->assumed());
    EXPECT_EQ(refs->refs.at("refs/heads/main").oid, k_a);
    EXPECT_EQ(client->capabilities().object_format, "sha1");
    auto fetched = client->fetch({.wants = {k_a}}, [](std::string_view) -> Status { return {}; }, {});
    ASSERT_TRUE(fetched) << fetched.error().message;
    // Two requests, no advertisement; each names the object format the server checks.
    EXPECT_EQ(log.advertisements, 0);
    ASSERT_EQ(log.requests.size(), 2u);
    EXPECT_TRUE(has_pkt(log.requests[0], "command=ls-refs"));
    EXPECT_TRUE(has_pkt(log.requests[0], "object-format=sha1"));
    EXPECT_TRUE(has_pkt(log.requests[0], "unborn"));
    EXPECT_TRUE(has_pkt(log.requests[1], "command=fetch"));
    EXPECT_TRUE(has_pkt(log.requests[1], "object-format=sha1"));
}

TEST(CapabilityMemo, ARefusedDirectRequestFallsBackToDiscoveryWithoutAnError) {
    const std::string sha256_advertisement = v2_advertisement(pkt("object-format=sha256"));
    const std::string sha256_listing = pkt(k_sha256_a + " HEAD symref-target:refs/heads/main") +
                                       pkt(k_sha256_a + " refs/heads/main") + "0000";
    struct Case {
        std::string name;
        Result<std::string> direct; // the answer to the direct ls-refs
        std::string advertisement;  // then the discovery's
        std::string listing;        // and the second ls-refs'
        std::string format;         // the object format the session ends with
    };
    std::vector<Case> cases{
        {"ERR packet (git: mismatched object format)",
         pkt("ERR mismatched object format: server sha256; client sha1"), sha256_advertisement,
         sha256_listing, "sha256"},
        {"an answer in another object format", sha256_listing, sha256_advertisement, sha256_listing,
         "sha256"},
        {"HTTP 403",
         std::unexpected(Error::git("fake-http: authentication failed (HTTP 403)", Cause::refused)),
         sha1_advertisement(), sha1_listing(), "sha1"},
        {"HTTP 404",
         std::unexpected(Error::git("fake-http: repository not found (HTTP 404)", Cause::refused)),
         sha1_advertisement(), sha1_listing(), "sha1"},
        {"another Content-Type (a dumb server)",
         std::unexpected(Error::git("fake-http: not a smart git HTTP server (Content-Type \"text/plain\")")),
         sha1_advertisement(), sha1_listing(), "sha1"},
        {"garbage", std::string("<html>"), sha1_advertisement(), sha1_listing(), "sha1"},
        {"an empty body (the server died: git answers 200, then its upload-pack dies on a format mismatch, "
         "or as v0 on \"command=\")",
         std::string(), sha1_advertisement(), sha1_listing(), "sha1"},
    };
    for (auto& c : cases) {
        SCOPED_TRACE(c.name);
        CapabilityMemo memo;
        fill_memo(memo);
        StatelessConnection::Log log;
        auto client = stateless_client(memo, c.advertisement, {c.direct, c.listing}, log);
        ASSERT_TRUE(client) << client.error().message;
        auto refs = client->ls_refs({"refs/heads/"});
        ASSERT_TRUE(refs) << refs.error().message;
        EXPECT_EQ(client->capabilities().object_format, c.format);
        EXPECT_EQ(refs->refs.at("refs/heads/main").oid, c.format == "sha1" ? k_a : k_sha256_a);
        EXPECT_EQ(log.advertisements, 1);
        ASSERT_EQ(log.requests.size(), 2u);
        EXPECT_TRUE(has_pkt(log.requests[1], "object-format=" + c.format));
        // The discovery replaced what the memo held.
        EXPECT_EQ(memo.assumed(k_memo_key)->object_format, c.format);
    }
}

TEST(CapabilityMemo, AnAnswerWithoutAnObjectIdProvesNothing) {
    // An empty repository: no ref and an unborn HEAD say nothing of its object format.
    CapabilityMemo memo;
    fill_memo(memo);
    StatelessConnection::Log log;
    const std::string empty = pkt("unborn HEAD symref-target:refs/heads/main") + "0000";
    auto client = stateless_client(memo, v2_advertisement(pkt("object-format=sha256")), {empty, empty}, log);
    ASSERT_TRUE(client);
    auto refs = client->ls_refs({"refs/heads/"});
    ASSERT_TRUE(refs) << refs.error().message;
    EXPECT_TRUE(refs->head_unborn);
    EXPECT_EQ(client->capabilities().object_format, "sha256");
    EXPECT_EQ(log.advertisements, 1);
    EXPECT_EQ(log.requests.size(), 2u);
}

TEST(CapabilityMemo, AFailureThatIsNotTheServersEndsTheRepositoryAtOnce) {
    for (auto error : {Error::timeout("fake-http: timed out"), Error::interrupted("the job is stopping")}) {
        CapabilityMemo memo;
        fill_memo(memo);
        StatelessConnection::Log log;
        auto client = stateless_client(memo, sha1_advertisement(), {std::unexpected(error)}, log);
        ASSERT_TRUE(client);
        auto refs = client->ls_refs({"refs/heads/"});
        ASSERT_FALSE(refs);
        EXPECT_EQ(refs.error().kind, error.kind);
        EXPECT_EQ(log.advertisements, 0);
        EXPECT_EQ(log.requests.size(), 1u);
    }
}

TEST(CapabilityMemo, AFallbackThatFailsTooReportsTheDiscoverysError) {
    CapabilityMemo memo;
    fill_memo(memo);
    StatelessConnection::Log log;
    // A v0 server at that path: the direct request and the discovery both show it.
    auto client = stateless_client(memo, pkt(k_a + " HEAD"), {std::string("<html>")}, log);
    ASSERT_TRUE(client);
    auto refs = client->ls_refs({"refs/heads/"});
    ASSERT_FALSE(refs);
    EXPECT_TRUE(is_not_v2_error(refs.error())) << refs.error().message;
    EXPECT_EQ(log.advertisements, 1);
}

TEST(CapabilityMemo, RefusalsInARowStopTheDirectRequests) {
    CapabilityMemo memo;
    fill_memo(memo);
    for (int i = 0; i < k_max_memo_refusals; ++i) {
        StatelessConnection::Log log;
        auto client =
            stateless_client(memo, sha1_advertisement(), {std::string("<html>"), sha1_listing()}, log);
        ASSERT_TRUE(client);
        EXPECT_TRUE(client->assumed());
        ASSERT_TRUE(client->ls_refs({"refs/heads/"}));
    }
    StatelessConnection::Log log;
    auto client = stateless_client(memo, sha1_advertisement(), {sha1_listing()}, log);
    ASSERT_TRUE(client);
    EXPECT_FALSE(client->assumed());
    EXPECT_EQ(log.advertisements, 1);
}

TEST(CapabilityMemo, ARepositoryThatFailsEitherWayIsNotCountedAgainstTheMemo) {
    CapabilityMemo memo;
    fill_memo(memo);
    const auto missing = Error::git("fake-http: repository not found (HTTP 404)", Cause::refused);
    for (int i = 0; i < 2 * k_max_memo_refusals; ++i) {
        StatelessConnection::Log log;
        auto client = stateless_client(memo, sha1_advertisement(),
                                       {std::unexpected(missing), std::unexpected(missing)}, log);
        ASSERT_TRUE(client);
        EXPECT_TRUE(client->assumed());
        auto refs = client->ls_refs({"refs/heads/"});
        ASSERT_FALSE(refs);
        EXPECT_NE(refs.error().message.find("HTTP 404"), std::string::npos);
        EXPECT_EQ(log.advertisements, 1);
    }
    EXPECT_TRUE(memo.assumed(k_memo_key));
}

TEST(CapabilityMemo, OnlyStatelessConnectionsAndTheOriginsOwnAdvertisementsUseIt) {
    CapabilityMemo memo;
    // An advertisement that a redirect brought from another origin is not recorded.
    StatelessConnection::Log redirected;
    auto elsewhere = stateless_client(memo, sha1_advertisement(), {}, redirected, /*by_origin=*/false);
    ASSERT_TRUE(elsewhere);
    EXPECT_FALSE(memo.assumed(k_memo_key));
    // A connection whose server speaks first (git://, ssh, a local upload-pack) always reads it.
    fill_memo(memo);
    std::vector<std::string> requests;
    bool read = false;
    class Speaking final : public Connection {
      public:
        explicit Speaking(bool* read) : m_read(read) {}
        Status read_advertisement(const ResponseHandler& handler) override {
            *m_read = true;
            auto bytes = sha1_advertisement();
            auto done = handler(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
            return done ? Status{} : fail(done.error());
        }
        Status request(std::string_view, const ResponseHandler&) override { return fail(Error::git("no")); }
        Status close() override { return {}; }
        [[nodiscard]] std::string describe() const override { return "speaking"; }

      private:
        bool* m_read;
    };
    auto client = ProtocolClient::open(std::make_unique<Speaking>(&read), MemoSlot{&memo, k_memo_key});
    ASSERT_TRUE(client);
    EXPECT_TRUE(read);
    EXPECT_FALSE(client->assumed());
}

TEST(CapabilityMemo, AFetchOnAssumedCapabilitiesReadsTheAdvertisementFirst) {
    CapabilityMemo memo;
    fill_memo(memo);
    StatelessConnection::Log log;
    auto client = stateless_client(memo, sha1_advertisement(), {k_pack_response}, log);
    ASSERT_TRUE(client);
    auto fetched = client->fetch({.wants = {k_a}}, [](std::string_view) -> Status { return {}; }, {});
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_EQ(log.advertisements, 1);
    EXPECT_FALSE(client->assumed());
}
