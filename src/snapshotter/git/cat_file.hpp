// A `git cat-file --batch` session: objects asked for one at a time, each
// answer read before the next question is written (so neither pipe can fill
// up), every answer bounded in what is kept. One git child answers what would
// otherwise be a child per object (git/ancestry.hpp walks commits with it).
#pragma once

#include "snapshotter/git/git.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::git {

class CatFileBatch {
  public:
    // An object as read: its type, its size, and the first bytes of its content.
    struct Object {
        std::string type;       // "commit", "tree", "blob" or "tag"
        std::uint64_t size = 0; // the whole content's size
        std::string content;    // at most the `keep` bytes read() was given
    };

    // Start `git cat-file --batch` in `repo` through `git` (GitApi::spawn),
    // ended by `timeout`.
    static Result<CatFileBatch> start(const GitApi& git, const std::filesystem::path& repo,
                                      std::chrono::milliseconds timeout);

    // The object `name` names (an object id, or "<commit>:<path>"), keeping
    // the first `keep` bytes of its content (the rest is read and dropped);
    // nullopt when there is none. Fails with Git on a name holding a newline
    // or an answer git should not give.
    Result<std::optional<Object>> read(std::string_view name, std::size_t keep);

    // Close the session and wait for git; fails when git reported an error.
    Status finish();

  private:
    explicit CatFileBatch(Child child) : m_child(std::move(child)) {}
    // Append what git wrote next to m_buf (keeping the unread part only).
    Status fill();
    // The next answer line, without its newline (at most 1 KiB).
    Result<std::string> read_line();

    Child m_child;
    std::string m_buf;
    std::size_t m_pos = 0; // how much of m_buf is read
};

} // namespace snapshotter::git
