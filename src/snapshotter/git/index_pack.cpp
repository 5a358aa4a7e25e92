#include "snapshotter/git/index_pack.hpp"

#include "snapshotter/util/process.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"

#include <fmt/format.h>

namespace snapshotter::git {

Result<PackIndexer> PackIndexer::start(const GitApi& git, const std::filesystem::path& repo,
                                       std::chrono::milliseconds timeout) {
    auto child = git.spawn(repo, {"index-pack", "--stdin", "--fix-thin"}, timeout);
    if (!child)
        return fail(child.error());
    return PackIndexer(std::move(*child));
}

Status PackIndexer::feed(std::span<const std::byte> bundle_bytes) {
    if (!m_child || m_failed)
        return {};
    std::size_t skip = 0;
    while (m_in_header && skip < bundle_bytes.size()) {
        const bool newline = bundle_bytes[skip] == std::byte{'\n'};
        if (newline && m_at_line_start)
            m_in_header = false; // the empty line that ends the header
        m_at_line_start = newline;
        ++skip;
    }
    auto pack = bundle_bytes.subspan(skip);
    if (pack.empty())
        return {};
    m_pack_bytes += pack.size();
    // index-pack exiting early is reported by finish() with its own message;
    // the bundle keeps streaming to storage meanwhile.
    if (auto s = m_child->write(pack); !s)
        m_failed = s.error();
    return {};
}

Result<std::string> PackIndexer::finish() {
    if (!m_child)
        return fail(Error::internal("index-pack already finished"));
    m_child->close_stdin();
    std::string out;
    std::byte buffer[256];
    for (;;) {
        auto n = m_child->read(buffer);
        if (!n) {
            cancel();
            return fail(n.error());
        }
        if (*n == 0)
            break;
        out.append(reinterpret_cast<const char*>(buffer), *n);
    }
    auto exit = m_child->wait();
    m_child.reset();
    if (!exit)
        return fail(exit.error());
    if (m_pack_bytes == 0)
        return fail(Error::integrity("git index-pack: the bundle holds no pack"));
    if (!exit->ok()) {
        std::string detail = tail_lines(redact(exit->err));
        if (detail.empty())
            detail = m_failed ? m_failed->message : fmt::format("exit code {}", exit->exit_code);
        return fail(Error::integrity(redact(fmt::format("git index-pack rejected the pack: {}", detail))));
    }
    // "pack\t<checksum>\n" (or "keep\t..." under --keep).
    auto text = trim_space(out);
    auto tab = text.find('\t');
    return std::string(tab == std::string_view::npos ? text : text.substr(tab + 1));
}

void PackIndexer::cancel() {
    if (!m_child)
        return;
    m_child.reset(); // kills the process group and reaps it
}

} // namespace snapshotter::git
