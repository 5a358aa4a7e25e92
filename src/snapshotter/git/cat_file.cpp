#include "snapshotter/git/cat_file.hpp"

#include "snapshotter/git/failure.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <fmt/format.h>
#include <span>

namespace snapshotter::git {
namespace {

// A longer name is refused: its "missing" answer would outgrow an answer line.
constexpr std::size_t k_max_name_bytes = 1000;
// An answer line ("<oid> <type> <size>" or "<name> missing") is at most this long.
constexpr std::size_t k_max_answer_line = 1024;
// A --batch-command chunk holds at most this many names and bytes of questions
// (git keeps a chunk's questions until its "flush").
constexpr std::size_t k_chunk_names = 4096;
constexpr std::size_t k_chunk_bytes = std::size_t{256} << 10;

// What a failed answer is reported as: "cat-file --batch-command: <message>".
Error in_session(std::string_view what, const Error& error) {
    return error.with_context(what);
}

} // namespace

bool has_batch_command(std::string_view version) {
    int major = 0, minor = 0;
    auto dot = version.find('.');
    if (dot == std::string_view::npos)
        return false;
    const auto head = version.substr(0, dot), rest = version.substr(dot + 1);
    if (std::from_chars(head.data(), head.data() + head.size(), major).ec != std::errc{} ||
        std::from_chars(rest.data(), rest.data() + rest.size(), minor).ec != std::errc{})
        return false;
    return major > 2 || (major == 2 && minor >= 36);
}

// One git child of the session and what it printed that was not read yet.
struct CatFileSession::Reader {
    Child child;
    std::string what; // "cat-file --batch-command", for messages
    std::string buf;
    std::size_t pos = 0; // how much of buf is read

    Reader(Child c, std::string w) : child(std::move(c)), what(std::move(w)) {}

    // Append what git wrote next to buf (keeping the unread part only); git
    // ending its output here is an error that says how git ended.
    Status fill() {
        buf.erase(0, pos);
        pos = 0;
        std::array<std::byte, std::size_t{64} * 1024> chunk{};
        auto n = child.read(chunk);
        if (!n)
            return fail(in_session(what, n.error()));
        if (*n == 0) {
            auto exit = child.wait();
            if (!exit)
                return fail(in_session(what, exit.error()));
            const std::string how = exit->signal != 0 ? fmt::format("killed by signal {}", exit->signal)
                                                      : fmt::format("exit code {}", exit->exit_code);
            return fail(
                git_failure(fmt::format("{}: git ended before answering ({})", what, how), exit->err));
        }
        buf.append(reinterpret_cast<const char*>(chunk.data()), *n);
        return {};
    }

    // The next answer line, without its newline.
    Result<std::string> line() {
        for (;;) {
            if (auto nl = buf.find('\n', pos); nl != std::string::npos) {
                if (nl - pos > k_max_answer_line)
                    break;
                std::string out = buf.substr(pos, nl - pos);
                pos = nl + 1;
                return out;
            }
            if (buf.size() - pos > k_max_answer_line)
                break;
            if (auto s = fill(); !s)
                return fail(s.error());
        }
        return fail(Error::git(fmt::format("{}: an answer line over {} bytes", what, k_max_answer_line)));
    }

    // Read `size` bytes of content and the newline after them, keeping the
    // first `keep` in `into`.
    Status content(std::uint64_t size, std::size_t keep, std::string& into) {
        into.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(size, keep)));
        std::uint64_t left = size;
        while (left > 0) {
            if (pos == buf.size())
                if (auto s = fill(); !s)
                    return fail(s.error());
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size() - pos));
            if (into.size() < keep)
                into.append(buf, pos, std::min(n, keep - into.size()));
            pos += n;
            left -= n;
        }
        if (pos == buf.size())
            if (auto s = fill(); !s)
                return fail(s.error());
        if (buf[pos] != '\n')
            return fail(Error::git(fmt::format("{}: an object's content not followed by a newline", what)));
        ++pos;
        return {};
    }
};

CatFileSession::CatFileSession(const GitApi& git, std::filesystem::path repo,
                               std::chrono::milliseconds timeout, CatFileMode mode,
                               std::unique_ptr<Reader> contents)
    : m_git(&git), m_repo(std::move(repo)), m_deadline(std::chrono::steady_clock::now() + timeout),
      m_mode(mode), m_contents(std::move(contents)) {}

CatFileSession::CatFileSession(CatFileSession&&) noexcept = default;
CatFileSession::~CatFileSession() = default;

Result<CatFileSession> CatFileSession::start(const GitApi& git, const std::filesystem::path& repo,
                                             std::chrono::milliseconds timeout, CatFileMode mode) {
    if (mode == CatFileMode::automatic)
        mode = has_batch_command(git.version()) ? CatFileMode::batch_command : CatFileMode::separate;
    std::vector<std::string> args = {"cat-file", "--batch"};
    if (mode == CatFileMode::batch_command)
        args = {"cat-file", "--batch-command", "--buffer"};
    auto child = git.spawn(repo, args, timeout);
    if (!child)
        return fail(child.error());
    auto reader = std::make_unique<Reader>(std::move(*child), fmt::format("{} {}", args[0], args[1]));
    return CatFileSession(git, repo, timeout, mode, std::move(reader));
}

Result<CatFileSession::Reader*> CatFileSession::reader_for(Ask what) {
    if (m_mode == CatFileMode::batch_command || what == Ask::contents)
        return m_contents.get();
    if (!m_check) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            m_deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return fail(Error::timeout("cat-file --batch-check: the session's time is up"));
        auto child = m_git->spawn(m_repo, {"cat-file", "--batch-check"}, left);
        if (!child)
            return fail(child.error());
        m_check = std::make_unique<Reader>(std::move(*child), "cat-file --batch-check");
    }
    return m_check.get();
}

Status CatFileSession::ask(Ask what, const std::vector<std::string>& names, std::size_t keep,
                           const OnAnswer& on_answer) {
    if (m_failed)
        return fail(m_failed->with_context("cat-file: the session failed earlier"));
    if (names.empty())
        return {};
    for (const auto& name : names)
        if (name.empty() || name.size() > k_max_name_bytes || name.find('\n') != std::string::npos)
            return fail(Error::git(fmt::format(
                "cat-file: an object name must be one line of at most {} bytes", k_max_name_bytes)));
    auto reader = reader_for(what);
    if (!reader) {
        m_failed = reader.error();
        return fail(reader.error());
    }
    Reader& r = **reader;
    const bool command = m_mode == CatFileMode::batch_command;
    const std::string_view verb = !command ? "" : what == Ask::contents ? "contents " : "info ";
    // Without --buffer git answers each line as it reads it: a chunk never
    // larger than an empty pipe takes, so that writing it cannot block.
    const std::size_t max_bytes = command ? k_chunk_bytes : PIPE_BUF;
    auto answer_chunk = [&](std::size_t from, std::size_t to) -> Status {
        for (std::size_t i = from; i < to; ++i) {
            auto line = r.line();
            if (!line)
                return fail(line.error());
            if (*line == names[i] + " missing") {
                if (auto s = on_answer(i, std::nullopt); !s)
                    return fail(s.error());
                continue;
            }
            // "<oid> <type> <size>", the oid the name's when the name is one.
            std::optional<Object> object(std::in_place);
            auto first = line->find(' ');
            auto last = line->rfind(' ');
            if (first == std::string::npos || last == first ||
                std::from_chars(line->data() + last + 1, line->data() + line->size(), object->size).ec !=
                    std::errc{} ||
                !is_object_id(std::string_view(*line).substr(0, first)) ||
                (is_object_id(names[i]) && line->substr(0, first) != names[i]))
                return fail(Error::git(fmt::format("{}: a malformed answer \"{}\" to \"{}\"", r.what,
                                                   line->substr(0, 120), names[i].substr(0, 120))));
            object->type = line->substr(first + 1, last - first - 1);
            if (what == Ask::contents)
                if (auto s = r.content(object->size, keep, object->content); !s)
                    return fail(s.error());
            if (auto s = on_answer(i, std::move(object)); !s)
                return fail(s.error());
        }
        return {};
    };
    for (std::size_t from = 0; from < names.size();) {
        std::string request;
        std::size_t to = from;
        while (to < names.size() && to - from < k_chunk_names) {
            const std::size_t more = verb.size() + names[to].size() + 1;
            if (to > from && request.size() + more + 6 > max_bytes)
                break;
            request.append(verb).append(names[to]).push_back('\n');
            ++to;
        }
        if (command)
            request += "flush\n";
        Status s = r.child.write(std::as_bytes(std::span(request)));
        if (!s)
            s = fail(in_session(r.what, s.error()));
        if (s)
            s = answer_chunk(from, to);
        if (!s) {
            m_failed = s.error();
            return s;
        }
        from = to;
    }
    return {};
}

Result<std::optional<CatFileSession::Object>> CatFileSession::read(std::string_view name, std::size_t keep) {
    std::optional<Object> out;
    auto s = ask(Ask::contents, {std::string(name)}, keep, [&](std::size_t, std::optional<Object> object) {
        out = std::move(object);
        return Status{};
    });
    if (!s)
        return fail(s.error());
    return out;
}

Result<std::vector<std::optional<CatFileSession::Object>>>
CatFileSession::read_many(const std::vector<std::string>& names, std::size_t keep) {
    std::vector<std::optional<Object>> out(names.size());
    auto s = ask(Ask::contents, names, keep, [&](std::size_t i, std::optional<Object> object) {
        out[i] = std::move(object);
        return Status{};
    });
    if (!s)
        return fail(s.error());
    return out;
}

Result<std::vector<std::optional<CatFileSession::Info>>>
CatFileSession::info(const std::vector<std::string>& names) {
    std::vector<std::optional<Info>> out(names.size());
    auto s = ask(Ask::info, names, 0, [&](std::size_t i, std::optional<Object> object) {
        if (object)
            out[i] = Info{std::move(object->type), object->size};
        return Status{};
    });
    if (!s)
        return fail(s.error());
    return out;
}

Status CatFileSession::finish() {
    if (m_failed)
        return fail(*m_failed);
    for (Reader* r : {m_contents.get(), m_check.get()}) {
        if (r == nullptr)
            continue;
        r->child.close_stdin();
        auto exit = r->child.wait();
        if (!exit)
            return fail(in_session(r->what, exit.error()));
        if (!exit->ok())
            return fail(git_failure(r->what, exit->err));
    }
    return {};
}

Result<std::map<std::string, std::string>> object_types(CatFileSession& session,
                                                        const std::vector<std::string>& oids) {
    std::map<std::string, std::string> found;
    auto infos = session.info(oids);
    if (!infos)
        return fail(infos.error());
    for (std::size_t i = 0; i < oids.size(); ++i)
        if ((*infos)[i])
            found.emplace(oids[i], std::move((*infos)[i]->type));
    return found;
}

Result<std::optional<std::string>> blob_at(CatFileSession& session, const std::string& commit,
                                           const std::string& path, std::size_t max_bytes) {
    if (commit.find_first_of("\n:") != std::string::npos || path.find('\n') != std::string::npos)
        return std::optional<std::string>{};
    auto object = session.read(commit + ":" + path, max_bytes);
    if (!object)
        return fail(object.error());
    if (!*object || (*object)->type != "blob" || (*object)->size > max_bytes)
        return std::optional<std::string>{};
    return std::optional<std::string>(std::move((*object)->content));
}

} // namespace snapshotter::git
