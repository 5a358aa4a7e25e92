#include "snapshotter/git/ancestry.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <queue>
#include <unordered_map>
#include <utility>

namespace snapshotter::git {
namespace {

// At most this much of an object's headers (up to the blank line) is kept:
// a commit's parents and committer come first, so a commit whose committer
// line is not within it is left to merge-base.
constexpr std::size_t k_max_object_headers = std::size_t{1} << 20;

// A commit as the ancestry walk needs it.
struct WalkCommit {
    long long date = 0; // committer time
    std::vector<std::string> parents;
};

// Parse the headers of a commit; nullopt when they are not a commit's.
std::optional<WalkCommit> parse_commit_headers(std::string_view head) {
    WalkCommit commit;
    bool dated = false;
    for (std::string_view rest = head; !rest.empty();) {
        const auto nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
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
// CatFileSession: whether `ancestor` is reachable from `descendant` (both
// commits). Walks both histories newest first; a commit reached from both
// makes everything below it stale, and the walk ends when only stale commits
// are queued. Exact whatever the commit dates: the commits on a path from
// `descendant` down to `ancestor` can never be reached from `ancestor`.
class AncestryWalk {
  public:
    explicit AncestryWalk(CatFileSession& reader) : m_reader(reader) {}

    // The commit `oid` peels to (annotated tags followed); nullopt when it is
    // missing or not a commit, or when its headers cannot be read (then
    // take_unreadable() is true once).
    Result<std::optional<std::string>> peel(std::string oid) {
        for (int depth = 0; depth < 16; ++depth) {
            if (m_commits.contains(oid))
                return std::optional<std::string>(oid);
            auto read = m_reader.read(oid, k_max_object_headers);
            if (!read)
                return fail(read.error());
            if (!*read)
                return std::optional<std::string>{};
            const std::string& type = (*read)->type;
            std::string_view head = (*read)->content;
            if (auto end = head.find("\n\n"); end != std::string_view::npos)
                head = head.substr(0, end + 1); // the headers, not the message
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
            oid = std::string(head.substr(7, head.find('\n') - 7));
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
    CatFileSession& m_reader;
    std::unordered_map<std::string, WalkCommit> m_commits;
    std::size_t m_read = 0;
    bool m_unreadable = false;
};

} // namespace

Result<std::vector<bool>> ancestry(const GitApi& git, const std::filesystem::path& repo,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   std::chrono::milliseconds timeout) {
    if (pairs.empty())
        return std::vector<bool>{};
    auto objects = CatFileSession::start(git, repo, timeout);
    if (!objects)
        return fail(objects.error());
    auto answers = ancestry(git, repo, pairs, *objects);
    if (!answers)
        return fail(answers.error());
    if (auto s = objects->finish(); !s)
        return fail(s.error());
    return answers;
}

Result<std::vector<bool>> ancestry(const GitApi& git, const std::filesystem::path& repo,
                                   const std::vector<std::pair<std::string, std::string>>& pairs,
                                   CatFileSession& objects) {
    std::vector<bool> answers(pairs.size(), false);
    if (pairs.empty())
        return answers;
    for (const auto& [ancestor, descendant] : pairs)
        if (!is_object_id(ancestor) || !is_object_id(descendant))
            return fail(Error::git(fmt::format("ancestry: not object ids: {} {}", ancestor.substr(0, 80),
                                               descendant.substr(0, 80))));
    AncestryWalk walk(objects);
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
    for (auto i : too_long) {
        auto forward = git.is_ancestor(repo, pairs[i].first, pairs[i].second);
        if (!forward)
            return fail(forward.error());
        answers[i] = *forward;
    }
    return answers;
}

} // namespace snapshotter::git
