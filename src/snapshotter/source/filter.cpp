#include "snapshotter/source/filter.hpp"

#include <algorithm>
#include <cctype>

namespace snapshotter::source {
namespace {

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Whether `c` is in the set `[...]` starting at pattern[pos] (pos at '[');
// `end` receives the index after ']'. A '[' without ']' is a literal.
bool class_match(std::string_view p, std::size_t pos, char c, std::size_t& end, bool& is_class) {
    std::size_t i = pos + 1;
    bool negate = i < p.size() && (p[i] == '!' || p[i] == '^');
    if (negate)
        ++i;
    std::size_t first = i;
    bool found = false;
    for (; i < p.size() && (p[i] != ']' || i == first); ++i) {
        if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
            if (lower(p[i]) <= lower(c) && lower(c) <= lower(p[i + 2]))
                found = true;
            i += 2;
        } else if (lower(p[i]) == lower(c)) {
            found = true;
        }
    }
    if (i >= p.size()) {
        is_class = false;
        return false;
    }
    is_class = true;
    end = i + 1;
    return c != '/' && found != negate;
}

} // namespace

bool glob_match(std::string_view p, std::string_view t) {
    // Iterative matcher with two backtrack points: the last '*' (which may
    // not cross '/') and the last '**' (which may).
    std::size_t pi = 0, ti = 0;
    std::size_t star_p = std::string_view::npos, star_t = 0;
    std::size_t dstar_p = std::string_view::npos, dstar_t = 0;
    while (ti < t.size()) {
        if (pi < p.size()) {
            char pc = p[pi];
            if (pc == '*') {
                if (pi + 1 < p.size() && p[pi + 1] == '*') {
                    dstar_p = pi + 2;
                    dstar_t = ti;
                    star_p = std::string_view::npos;
                    pi += 2;
                } else {
                    star_p = pi + 1;
                    star_t = ti;
                    ++pi;
                }
                continue;
            }
            if (pc == '[') {
                std::size_t end = 0;
                bool is_class = false;
                bool ok = class_match(p, pi, t[ti], end, is_class);
                if (is_class) {
                    if (ok) {
                        pi = end;
                        ++ti;
                        continue;
                    }
                } else if (lower(t[ti]) == '[') {
                    ++pi;
                    ++ti;
                    continue;
                }
            } else if ((pc == '?' && t[ti] != '/') || (pc != '?' && lower(pc) == lower(t[ti]))) {
                ++pi;
                ++ti;
                continue;
            }
        }
        // Mismatch: let the last '*' take one more character (not '/'),
        // else the last '**' (anything).
        if (star_p != std::string_view::npos && t[star_t] != '/') {
            pi = star_p;
            ti = ++star_t;
            continue;
        }
        if (dstar_p != std::string_view::npos) {
            star_p = std::string_view::npos;
            pi = dstar_p;
            ti = ++dstar_t;
            continue;
        }
        return false;
    }
    while (pi < p.size() && p[pi] == '*')
        ++pi;
    return pi == p.size();
}

FilterResult apply_filters(const job::Source& source, std::vector<RemoteRepository> listed) {
    FilterResult out;
    filter_into(source, std::move(listed), out);
    return out;
}

void filter_into(const job::Source& source, std::vector<RemoteRepository> listed, FilterResult& out) {
    auto any_glob = [](const std::vector<std::string>& globs, const std::string& name) {
        return std::any_of(globs.begin(), globs.end(), [&](const auto& g) { return glob_match(g, name); });
    };
    auto has_topic = [&](const RemoteRepository& r) {
        return std::any_of(r.topics.begin(), r.topics.end(), [&](const std::string& topic) {
            return std::any_of(source.topics.begin(), source.topics.end(), [&](const std::string& want) {
                return std::equal(topic.begin(), topic.end(), want.begin(), want.end(),
                                  [](char a, char b) { return lower(a) == lower(b); });
            });
        });
    };
    // The filter (index in k_filters) that removes `r`, or -1.
    auto removed_by = [&](const RemoteRepository& r) -> int {
        if (!source.include.empty() && !any_glob(source.include, r.full_name))
            return 0;
        if (any_glob(source.exclude, r.full_name))
            return 1;
        if (!source.archived && r.archived)
            return 2;
        if (!source.forks && r.fork)
            return 3;
        if (source.visibility == job::Visibility::public_only && r.visibility != "public")
            return 4;
        if (source.visibility == job::Visibility::private_only && r.visibility == "public")
            return 4;
        if (!source.topics.empty() && !has_topic(r))
            return 5;
        if (source.pushed_since && r.pushed_at && *r.pushed_at < *source.pushed_since)
            return 6;
        return -1;
    };
    for (auto& r : listed) {
        int f = removed_by(r);
        if (f < 0)
            out.kept.push_back(std::move(r));
        else
            out.removed[static_cast<std::size_t>(f)].push_back(std::move(r.full_name));
    }
}

} // namespace snapshotter::source
