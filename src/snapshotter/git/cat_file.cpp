#include "snapshotter/git/cat_file.hpp"

#include "snapshotter/git/failure.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <fmt/format.h>
#include <span>

namespace snapshotter::git {

Result<CatFileBatch> CatFileBatch::start(const GitApi& git, const std::filesystem::path& repo,
                                         std::chrono::milliseconds timeout) {
    auto child = git.spawn(repo, {"cat-file", "--batch"}, timeout);
    if (!child)
        return fail(child.error());
    return CatFileBatch(std::move(*child));
}

Result<std::optional<CatFileBatch::Object>> CatFileBatch::read(std::string_view name, std::size_t keep) {
    if (name.empty() || name.find('\n') != std::string_view::npos)
        return fail(Error::git("cat-file --batch: an object name must be one line"));
    const std::string request = std::string(name) + "\n";
    if (auto s = m_child.write(std::as_bytes(std::span(request))); !s)
        return fail(s.error());
    auto line = read_line();
    if (!line)
        return fail(line.error());
    // "<name> missing" (no such object, path or commit), else "<oid> <type> <size>".
    if (line->ends_with(" missing"))
        return std::optional<Object>{};
    auto first = line->find(' ');
    auto last = line->rfind(' ');
    Object object;
    if (first == std::string::npos || last == first ||
        std::from_chars(line->data() + last + 1, line->data() + line->size(), object.size).ec != std::errc{})
        return fail(
            Error::git(fmt::format("cat-file --batch: a malformed answer \"{}\"", line->substr(0, 120))));
    object.type = line->substr(first + 1, last - first - 1);
    object.content.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(object.size, keep)));
    std::uint64_t left = object.size + 1; // the content and its newline
    while (left > 0) {
        if (m_pos == m_buf.size())
            if (auto s = fill(); !s)
                return fail(s.error());
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, m_buf.size() - m_pos));
        if (object.content.size() < keep)
            object.content.append(m_buf, m_pos, std::min(n, keep - object.content.size()));
        m_pos += n;
        left -= n;
    }
    if (object.content.size() > object.size) // the newline that ends the answer
        object.content.pop_back();
    return std::optional<Object>(std::move(object));
}

Status CatFileBatch::finish() {
    m_child.close_stdin();
    auto exit = m_child.wait();
    if (!exit)
        return fail(exit.error());
    if (!exit->ok())
        return fail(git_failure("cat-file --batch", exit->err));
    return {};
}

Status CatFileBatch::fill() {
    m_buf.erase(0, m_pos);
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

Result<std::string> CatFileBatch::read_line() {
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

} // namespace snapshotter::git
