// One long-lived `git cat-file` session serving every object read of a
// snapshot (the ancestry walk, the types of old tips, Git LFS pointers and
// HEAD's .gitattributes and .lfsconfig), where each of those was a git child
// of its own. With git >= 2.36 it is one `git cat-file --batch-command
// --buffer` child: questions go in chunks, each ended by "flush", and git
// reads a whole chunk before it answers any of it, so neither pipe can fill
// up while the other waits. An older git gets `--batch` for contents and,
// when asked, `--batch-check` for types and sizes, a chunk of at most
// PIPE_BUF bytes at a time (an empty pipe always takes that much). Every
// answer is bounded in what is kept; a child that dies, answers what git
// should not, or does not answer within the session's timeout fails the
// call (and every later call) with an error that says so.
#pragma once

#include "snapshotter/git/git.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

// Which `git cat-file` a session runs.
enum class CatFileMode {
    automatic,     // batch_command when git.version() is 2.36 or later, else separate
    batch_command, // one `--batch-command --buffer` child
    separate,      // `--batch` for contents, `--batch-check` for types and sizes (git < 2.36)
};

// The longest a session lives when no deadline of the caller is shorter: a
// child that hangs fails the repository then.
inline constexpr std::chrono::milliseconds k_session_timeout = std::chrono::minutes{10};

// Whether `git version` `version` ("2.39.5") has `cat-file --batch-command` (2.36).
bool has_batch_command(std::string_view version);

class CatFileSession {
  public:
    // An object's type ("commit", "tree", "blob" or "tag") and size.
    struct Info {
        std::string type;
        std::uint64_t size = 0;
    };
    // An object as read: its type, its size, and the first bytes of its content.
    struct Object {
        std::string type;
        std::uint64_t size = 0; // the whole content's size
        std::string content;    // at most the `keep` bytes read() was given
    };

    // Start the session in `repo` through `git` (GitApi::spawn); every
    // answer must come within `timeout` of the start (the child is killed then).
    static Result<CatFileSession> start(const GitApi& git, const std::filesystem::path& repo,
                                        std::chrono::milliseconds timeout,
                                        CatFileMode mode = CatFileMode::automatic);

    CatFileSession(CatFileSession&&) noexcept;
    CatFileSession& operator=(CatFileSession&&) = delete;
    ~CatFileSession();

    // The object `name` names (an object id, or "<commit>:<path>"), keeping
    // the first `keep` bytes of its content (the rest is read and dropped);
    // nullopt when there is none. Fails with Git on a name holding a newline
    // or an answer git should not give, Timeout when git does not answer.
    Result<std::optional<Object>> read(std::string_view name, std::size_t keep);

    // read() of each of `names`, in order, asked in chunks.
    Result<std::vector<std::optional<Object>>> read_many(const std::vector<std::string>& names,
                                                         std::size_t keep);

    // The type and size of each of `names`, in order (nullopt: no such
    // object), asked in chunks; no content is read.
    Result<std::vector<std::optional<Info>>> info(const std::vector<std::string>& names);

    // Close the session and wait for git; fails when git reported an error.
    Status finish();

    // The mode the session runs in (never automatic).
    [[nodiscard]] CatFileMode mode() const { return m_mode; }

  private:
    struct Reader; // one git child and what it printed but was not read yet
    enum class Ask { contents, info };
    // Called with each answer, in order; the Object's content is empty for Ask::info.
    using OnAnswer = std::function<Status(std::size_t index, std::optional<Object>)>;

    CatFileSession(const GitApi& git, std::filesystem::path repo, std::chrono::milliseconds timeout,
                   CatFileMode mode, std::unique_ptr<Reader> contents);
    // Ask `what` of every name, in chunks, calling `on_answer` in order.
    Status ask(Ask what, const std::vector<std::string>& names, std::size_t keep, const OnAnswer& on_answer);
    // The child that answers `what` (a --batch-check one started on first use).
    Result<Reader*> reader_for(Ask what);

    const GitApi* m_git;
    std::filesystem::path m_repo;
    std::chrono::steady_clock::time_point m_deadline;
    CatFileMode m_mode;
    std::unique_ptr<Reader> m_contents;
    std::unique_ptr<Reader> m_check; // CatFileMode::separate only
    std::optional<Error> m_failed;   // once a call failed, the session answers nothing more
};

// The types ("commit", "tag", ...) of those of `oids` that `session`'s
// repository holds.
Result<std::map<std::string, std::string>> object_types(CatFileSession& session,
                                                        const std::vector<std::string>& oids);

// The blob at `path` of commit `commit`, at most `max_bytes`; nullopt when
// the commit has no such file, it is not a blob, or it is larger.
Result<std::optional<std::string>> blob_at(CatFileSession& session, const std::string& commit,
                                           const std::string& path, std::size_t max_bytes);

} // namespace snapshotter::git
