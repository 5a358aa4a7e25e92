#include "snapshotter/git/ancestry.hpp"

#include "snapshotter/git/failure.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fmt/format.h>
#include <queue>
#include <span>
#include <unordered_map>
#include <utility>

namespace snapshotter::git {
namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        out.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos)
            break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

// At most this much of an object's headers (up to the blank line) is kept:
// a commit's parents and committer come first, so a commit whose committer
// line is not within it is left to merge-base.
constexpr std::size_t k_max_object_headers = std::size_t{1} << 20;

// Reading objects one at a time from a `git cat-file --batch` child: each
// answer is "<oid> <type> <size>\n<content>\n" or "<oid> missing\n".
class BatchReader {
  public:
    explicit BatchReader(Child child) : m_child(std::move(child)) {}

    // The type of `oid` and its headers (the content up to the first blank
    // line, at most k_max_object_headers bytes; the rest is read and
    // dropped); nullopt when `repo` lacks it.
    Result<std::optional<std::pair<std::string, std::string>>> headers(const std::string& oid) {
        const std::string request = oid + "\n";
        if (auto s = m_child.write(std::as_bytes(std::span(request))); !s)
            return fail(s.error());
        auto line = read_line();
        if (!line)
            return fail(line.error());
        if (line->ends_with(" missing"))
            return std::optional<std::pair<std::string, std::string>>{};
        // "<oid> <type> <size>"
        auto first = line->find(' ');
        auto last = line->rfind(' ');
        std::size_t size = 0;
        if (first == std::string::npos || last == first ||
            std::from_chars(line->data() + last + 1, line->data() + line->size(), size).ec != std::errc{})
            return fail(
                Error::git(fmt::format("cat-file --batch: a malformed answer \"{}\"", line->substr(0, 120))));
        std::string type = line->substr(first + 1, last - first - 1);
        std::string head;
        bool complete = false;       // the blank line that ends the headers was seen
        std::size_t left = size + 1; // the content and its newline
        while (left > 0) {
            if (m_pos == m_buf.size())
                if (auto s = fill(); !s)
                    return fail(s.error());
            const std::size_t n = std::min(left, m_buf.size() - m_pos);
            if (!complete && head.size() < k_max_object_headers) {
                head.append(m_buf, m_pos, std::min(n, k_max_object_headers - head.size()));
                if (auto end = head.find("\n\n"); end != std::string::npos) {
                    head.resize(end + 1);
                    complete = true;
                }
            }
            m_pos += n;
            left -= n;
        }
        return std::optional<std::pair<std::string, std::string>>{
            std::pair{std::move(type), std::move(head)}};
    }

    // End the session; fails when git reported an error.
    Status finish() {
        m_child.close_stdin();
        auto exit = m_child.wait();
        if (!exit)
            return fail(exit.error());
        if (!exit->ok())
            return fail(git_failure("cat-file --batch", exit->err));
        return {};
    }

  private:
    Status fill() {
        m_buf.erase(0, m_pos); // keep only what is not read yet (part of a line, at most 1 KiB)
        m_pos = 0;
        std::array<std::byte, 64 * 1024> chunk{};
        auto n = m_child.read(chunk);
        if (!n)
            return fail(n.error());
        if (*n == 0)
            return fail(Error::git("cat-file --batch: the answer ended early"));
        m_buf.append(reinterpret_cast<const char*>(chunk.data()), *n);
        return {};
    }

    Result<std::string> read_line() {
        for (;;) {
            if (auto nl = m_buf.find('\n', m_pos); nl != std::string::npos) {
                std::string line = m_buf.substr(m_pos, nl - m_pos);
                m_pos = nl + 1;
                return line;
            }
            if (m_buf.size() - m_pos > 1024)
                return fail(Error::git("cat-file --batch: an answer line over 1 KiB"));
            if (auto s = fill(); !s)
                return fail(s.error());
        }
    }

    Child m_child;
    std::string m_buf;
    std::size_t m_pos = 0;
};

// A commit as the ancestry walk needs it.
struct WalkCommit {
    long long date = 0; // committer time
    std::vector<std::string> parents;
};

// Parse the headers of a commit; nullopt when they are not a commit's.
std::optional<WalkCommit> parse_commit_headers(std::string_view head) {
    WalkCommit commit;
    bool dated = false;
    for (auto line : split_lines(head)) {
        if (line.starts_with("parent ")) {
            commit.parents.emplace_back(line.substr(7));
        } else if (line.starts_with("committer ")) {
            // "committer Name <email> <time> <tz>"
            auto tz = line.rfind(' ');
            auto time = tz == std::string_view::npos ? tz : line.rfind(' ', tz - 1);
            if (time == std::string_view::npos ||
                std::from_chars(line.data() + time + 1, line.data() + tz, commit.date).ec != std::errc{})
                return std::nullopt;
            dated = true;
        }
    }
    if (!dated)
        return std::nullopt;
    return commit;
}

// git's paint_down_to_common() for one question, on commits read through a
// BatchReader: whether `ancestor` is reachable from `descendant` (both
// commits). Walks both histories newest first; a commit reached from both
// makes everything below it stale, and the walk ends when only stale commits
// are queued. Exact whatever the commit dates: the commits on a path from
// `descendant` down to `ancestor` can never be reached from `ancestor`.
class AncestryWalk {
  public:
    explicit AncestryWalk(BatchReader& reader) : m_reader(reader) {}

    // The commit `oid` peels to (annotated tags followed); nullopt when it is
    // missing or not a commit, or when its headers cannot be read (then
    // take_unreadable() is true once).
    Result<std::optional<std::string>> peel(std::string oid) {
        for (int depth = 0; depth < 16; ++depth) {
            if (m_commits.contains(oid))
                return std::optional<std::string>(oid);
            auto read = m_reader.headers(oid);
            if (!read)
                return fail(read.error());
            if (!*read)
                return std::optional<std::string>{};
            auto& [type, head] = **read;
            if (type == "commit") {
                auto commit = parse_commit_headers(head);
                if (!commit) {
                    m_unreadable = true;
                    return std::optional<std::string>{};
                }
                ++m_read;
                m_commits.emplace(oid, std::move(*commit));
                return std::optional<std::string>(oid);
            }
            if (type != "tag" || !head.starts_with("object "))
                return std::optional<std::string>{};
            oid = std::string(split_lines(head).front().substr(7));
        }
        return std::optional<std::string>{};
    }

    // Whether a commit peel() found unreadable (the walk cannot answer): once.
    bool take_unreadable() { return std::exchange(m_unreadable, false); }

    // Whether commit `ancestor` is reachable from commit `descendant`;
    // nullopt when the walk would read more than k_ancestry_walk_commits or
    // meets a commit it cannot read.
    Result<std::optional<bool>> reaches(const std::string& ancestor, const std::string& descendant) {
        if (ancestor == descendant)
            return std::optional<bool>(true);
        enum : unsigned char { k_from_ancestor = 1, k_from_descendant = 2, k_stale = 4 };
        std::unordered_map<std::string, unsigned char> flags;
        std::unordered_map<std::string, std::size_t> queued; // entries in `queue`, by commit
        std::size_t nonstale = 0;                            // queue entries of non-stale commits
        using Entry = std::pair<long long, std::string>;     // newest date first
        std::priority_queue<Entry> queue;
        auto push = [&](const std::string& oid) {
            queue.emplace(m_commits.at(oid).date, oid);
            ++queued[oid];
            if ((flags[oid] & k_stale) == 0)
                ++nonstale;
        };
        flags[ancestor] = k_from_ancestor;
        flags[descendant] = k_from_descendant;
        push(ancestor);
        push(descendant);
        while (nonstale > 0) {
            auto [date, oid] = queue.top();
            queue.pop();
            --queued[oid];
            unsigned char f = flags[oid] & (k_from_ancestor | k_from_descendant | k_stale);
            if ((f & k_stale) == 0)
                --nonstale;
            if (f == (k_from_ancestor | k_from_descendant))
                f |= k_stale; // a common ancestor: what is below it is decided
            const std::vector<std::string> parents = m_commits.at(oid).parents;
            for (const auto& parent : parents) {
                auto& pf = flags[parent];
                if ((pf & f) == f)
                    continue;
                if (!m_commits.contains(parent)) {
                    if (m_read >= k_ancestry_walk_commits)
                        return std::optional<bool>{};
                    auto peeled = peel(parent);
                    if (!peeled)
                        return fail(peeled.error());
                    if (take_unreadable())
                        return std::optional<bool>{};
                    if (!*peeled || *peeled != parent) { // a shallow boundary: nothing below it
                        pf |= f;
                        continue;
                    }
                }
                if ((f & k_stale) != 0 && (pf & k_stale) == 0)
                    nonstale -= queued[parent];
                pf |= f;
                if (parent == ancestor && (pf & k_from_descendant) != 0)
                    return std::optional<bool>(true);
                push(parent);
            }
        }
        return std::optional<bool>((flags[ancestor] & k_from_descendant) != 0);
    }

  private:
    BatchReader& m_reader;
    std::unordered_map<std::string, WalkCommit> m_commits;
    std::size_t m_read = 0;
    bool m_unreadable = false;
};

bool is_oid(std::string_view text) {
    return !object_format_of(text).empty() &&
           text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

Result<std::vector<bool>> ancestry(const GitApi& git, const std::filesystem::path& repo,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   std::chrono::milliseconds timeout) {
    std::vector<bool> answers(pairs.size(), false);
    if (pairs.empty())
        return answers;
    for (const auto& [ancestor, descendant] : pairs)
        if (!is_oid(ancestor) || !is_oid(descendant))
            return fail(Error::git(fmt::format("ancestry: not object ids: {} {}", ancestor.substr(0, 80),
                                               descendant.substr(0, 80))));
    auto child = git.spawn(repo, {"cat-file", "--batch"}, timeout);
    if (!child)
        return fail(child.error());
    BatchReader reader(std::move(*child));
    AncestryWalk walk(reader);
    std::vector<std::size_t> too_long; // pairs left to merge-base (a walk too long, a commit unreadable)
    for (std::size_t i = 0; i < pairs.size(); ++i) {
        auto ancestor = walk.peel(pairs[i].first);
        if (!ancestor)
            return fail(ancestor.error());
        auto descendant = walk.peel(pairs[i].second);
        if (!descendant)
            return fail(descendant.error());
        if (walk.take_unreadable()) {
            too_long.push_back(i);
            continue;
        }
        if (!*ancestor || !*descendant)
            continue; // missing, or not a commit: no fast-forward relation
        auto reached = walk.reaches(**ancestor, **descendant);
        if (!reached)
            return fail(reached.error());
        if (*reached)
            answers[i] = **reached;
        else
            too_long.push_back(i);
    }
    if (auto s = reader.finish(); !s)
        return fail(s.error());
    for (auto i : too_long) {
        auto forward = git.is_ancestor(repo, pairs[i].first, pairs[i].second);
        if (!forward)
            return fail(forward.error());
        answers[i] = *forward;
    }
    return answers;
}

} // namespace snapshotter::git
