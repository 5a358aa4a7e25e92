// Typed failures of the git layer: the one classification of git's and ssh's
// words (git/failure.hpp), and the causes the transports set where a failure
// is observed (a refused connection, a child's exit, a protocol check).
#include "snapshotter/git/failure.hpp"
#include "snapshotter/git/pktline.hpp"
#include "snapshotter/git/protocol.hpp"
#include "snapshotter/git/transport.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

using namespace snapshotter;
using namespace snapshotter::git;
using namespace std::chrono_literals;

// ---------------------------------------------------------------- git's stderr

TEST(ClassifyGitStderr, PermanentFailuresAreRefusals) {
    for (const char* text :
         {"fatal: Authentication failed for 'https://h/x.git/'",
          "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 403",
          "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 404",
          "remote: Repository not found.; fatal: repository 'https://h/x.git/' not found",
          "fatal: '/srv/x.git' does not appear to be a git repository",
          "fatal: could not read Username for 'https://h': terminal prompts disabled",
          "git@h: Permission denied (publickey).; fatal: Could not read from remote repository.",
          "remote: Access to this repository has been disabled by GitHub staff.",
          // a refusal wins over a network word in the same text
          "fatal: Authentication failed; fatal: the remote end hung up unexpectedly"})
        EXPECT_EQ(classify_git_stderr(text), Cause::refused) << text;
}

TEST(ClassifyGitStderr, OtherPermanentFailuresAreUnspecified) {
    for (const char* text : {"fatal: couldn't find remote ref refs/heads/gone", "exit code 128", "",
                             // the stream engine's own wording is typed where it is observed, never read
                             "server error (HTTP 503)", "too many requests (HTTP 429)",
                             "the response ended early", "the server closed the connection early",
                             // a full disk, whatever git reports after it (a kept pack's index-pack died)
                             "fatal: write error: No space left on device; fatal: fetch-pack: invalid "
                             "index-pack output",
                             "error: unable to write file: Disk quota exceeded; fatal: early EOF"})
        EXPECT_EQ(classify_git_stderr(text), Cause::unspecified) << text;
}

TEST(ClassifyGitStderr, TransientFailuresAndTheirCauses) {
    const std::pair<const char*, Cause> cases[] = {
        {"fatal: unable to access 'https://h/x.git/': Could not resolve host: h", Cause::network},
        {"fatal: unable to access 'https://h/x.git/': Failed to connect to h port 443 after 1 ms: Connection "
         "refused",
         Cause::network},
        {"error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502", Cause::http_5xx},
        {"fatal: unable to access 'https://h/x.git/': The requested URL returned error: 429",
         Cause::http_429},
        {"read error: Connection reset by peer; fatal: the remote end hung up unexpectedly", Cause::reset},
        {"fatal: early EOF; fatal: index-pack failed", Cause::reset},
        {"error: RPC failed; curl 28 Operation too slow. Less than 1000 bytes/sec", Cause::reset},
        {"ssh: connect to host h port 22: Connection timed out", Cause::timeout},
        {"ssh: Could not resolve hostname h: Name or service not known", Cause::network},
        {"fatal: unable to access 'https://h/x.git/': gnutls_handshake() failed", Cause::network},
    };
    for (const auto& [text, cause] : cases) {
        EXPECT_EQ(classify_git_stderr(text), cause) << text;
        EXPECT_TRUE(is_transient(classify_git_stderr(text))) << text;
    }
}

TEST(ClassifyGitStderr, WordsInTheUrlDoNotDecide) {
    // A repository or host named after a permanent failure still gets retries
    // on a network error: every marker holds a space, which no URL does.
    EXPECT_EQ(classify_git_stderr("fetch https://disabled-builds.example.com/org/disabled.git: read error: "
                                  "Connection reset by peer"),
              Cause::reset);
    EXPECT_EQ(classify_git_stderr("fatal: unable to access 'https://h/org/feature-disabled.git/': Could not "
                                  "resolve host: h"),
              Cause::network);
}

TEST(ClassifyGitStderr, ProtocolErrorsComeLast) {
    EXPECT_EQ(classify_git_stderr("fatal: protocol error: bad line length character: <htm"), Cause::protocol);
    // a transient or permanent word explains the garbling
    EXPECT_EQ(classify_git_stderr("fatal: protocol error: bad pack header; fatal: early EOF"), Cause::reset);
    EXPECT_EQ(classify_git_stderr("fatal: protocol error: repository not found"), Cause::refused);
}

TEST(GitFailure, QuotesTheTailAndJudgesIt) {
    auto e = git_failure("show-ref", "line 1\nline 2\nfatal: unable to access 'x': Connection refused\n");
    EXPECT_EQ(e.kind, ErrorKind::Git);
    EXPECT_EQ(e.cause, Cause::network);
    EXPECT_TRUE(e.message.starts_with("show-ref: ")) << e.message;
    EXPECT_NE(e.message.find("Connection refused"), std::string::npos) << e.message;
}

// ---------------------------------------------------------------- what the server says

TEST(RemoteError, IsJudgedWhereItArrives) {
    EXPECT_EQ(remote_error("access denied or repository not exported: /x\n").cause, Cause::refused);
    EXPECT_EQ(remote_error("upload-pack: not our ref").cause, Cause::unspecified);
    EXPECT_EQ(remote_error("fatal: protocol error: bad line length").cause, Cause::protocol);
    EXPECT_EQ(remote_error("upload-pack: not our ref").message, "remote error: upload-pack: not our ref");
}

TEST(ProtocolError, IsAProtocolRefusal) {
    auto e = protocol_error("empty side-band packet");
    EXPECT_EQ(e.message, "protocol error: empty side-band packet");
    EXPECT_EQ(e.cause, Cause::protocol);
    EXPECT_TRUE(is_protocol_refusal(e));
    EXPECT_FALSE(is_not_v2_error(e));
    EXPECT_FALSE(e.transient());
    // The decoder's own checks carry it.
    PktLineDecoder decoder;
    decoder.feed("zzzz");
    auto next = decoder.next();
    ASSERT_FALSE(next);
    EXPECT_TRUE(is_protocol_refusal(next.error())) << next.error().message;
}

TEST(ProtocolError, NoDecisionReadsTheMessage) {
    // Words alone, without the cause set where the failure was seen, decide nothing.
    auto quoted = Error::git(fmt::format("fetch: {} (protocol error)", k_not_v2));
    EXPECT_FALSE(is_not_v2_error(quoted));
    EXPECT_FALSE(is_protocol_refusal(quoted));
    EXPECT_FALSE(Error::git("fetch: Connection reset by peer").transient());
    EXPECT_TRUE(is_not_v2_error(Error::git("x", Cause::not_v2)));
    EXPECT_FALSE(is_not_v2_error(Error{ErrorKind::Storage, "x", Cause::not_v2}));
}

// ---------------------------------------------------------------- transports

TEST(TransportFailure, ARefusedDaemonConnectionIsANetworkFailure) {
    // Port 1 on loopback is closed on these machines: no server is needed.
    auto c = connect({.url = "git://127.0.0.1:1/x.git", .timeout = 5s});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().kind, ErrorKind::Git);
    EXPECT_EQ(c.error().cause, Cause::network) << c.error().message;
    EXPECT_NE(c.error().message.find("Connection refused"), std::string::npos) << c.error().message;
}

TEST(TransportFailure, ARefusedHttpConnectionIsANetworkFailure) {
    TransportOptions options{.url = "http://127.0.0.1:1/x.git", .timeout = 5s};
    options.policy.allow_http = true;
    auto c = connect(options);
    ASSERT_TRUE(c) << c.error().message; // http connects lazily
    auto s = (*c)->read_advertisement([](std::span<const std::byte>) -> Result<bool> { return true; });
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().kind, ErrorKind::Git);
    EXPECT_EQ(s.error().cause, Cause::network) << s.error().message;
}

TEST(TransportFailure, UploadPackOfAMissingRepositoryIsARefusal) {
    // The child's exit is where its stderr is judged.
    auto c = connect({.url = "file:///nonexistent/snapshotter-test.git", .timeout = 30s});
    Error e;
    if (!c) {
        e = c.error();
    } else {
        auto s = (*c)->read_advertisement([](std::span<const std::byte>) -> Result<bool> { return true; });
        ASSERT_FALSE(s);
        e = s.error();
    }
    EXPECT_EQ(e.kind, ErrorKind::Git) << e.message;
    EXPECT_EQ(e.cause, Cause::refused) << e.message;
}
