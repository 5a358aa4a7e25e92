#include "snapshotter/snapshot/engine.hpp"

#include "snapshotter/git/ancestry.hpp"
#include "snapshotter/git/protocol.hpp"
#include "snapshotter/snapshot/cli_engine.hpp"
#include "snapshotter/snapshot/stream_engine.hpp"
#include "snapshotter/util/redact.hpp"

#include <cerrno>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace snapshotter::snapshot {

std::chrono::milliseconds Deadline::left() const {
    using std::chrono::milliseconds;
    auto rest = std::chrono::duration_cast<milliseconds>(m_end - std::chrono::steady_clock::now());
    return std::max(rest, milliseconds{1000});
}

Result<ChosenEngine> choose_engine(const EngineContext& ec) {
    const auto& engine = ec.ctx.job.options.engine;
    std::optional<std::string> fallback;
    if (engine != job::Engine::cli) {
        auto stream = make_stream_engine(ec);
        auto listing = stream->list();
        if (listing)
            return ChosenEngine{std::move(stream), std::move(*listing), std::nullopt};
        if (engine != job::Engine::automatic || !git::is_protocol_refusal(listing.error()))
            return fail(listing.error());
        spdlog::info("{}: the stream engine cannot use this server ({}); using git", ec.repo.name,
                     listing.error().message);
        fallback = redact(listing.error().message);
    }
    // After a refusal the cli engine lists with git alone (no second refused attempt).
    auto cli = make_cli_engine(ec, fallback ? CliListing::git_only : CliListing::in_process_first);
    auto listing = cli->list();
    if (!listing)
        return fail(listing.error());
    return ChosenEngine{std::move(cli), std::move(*listing), std::move(fallback)};
}

git::StreamRequest stream_request(const EngineContext& ec) {
    const auto& options = ec.ctx.job.options;
    git::StreamRequest request;
    request.transport = ec.remote.transport;
    request.transport.timeout = ec.deadline.left();
    request.patterns = ec.repo.refs;
    request.max_refs = static_cast<std::size_t>(options.max_refs);
    request.max_pack_bytes = static_cast<std::uint64_t>(options.max_pack_bytes);
    request.allow_shallow = options.allow_shallow;
    return request;
}

Result<std::filesystem::path> cache_subdir(const job::Options& options, std::string_view sub) {
    auto dir = options.cache_dir / sub;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec || ::access(dir.c_str(), W_OK) != 0) {
        const auto why = ec ? ec.message() : std::string(errno_text(errno));
        return fail(Error::storage(
            fmt::format("options.cache_dir: cannot write the cache directory {}: {}; set options.cache_dir "
                        "to a writable directory (a tmpfs or the task's scratch volume)",
                        dir.string(), why)));
    }
    return dir;
}

Result<AncestryAnswers> ancestry_in(const git::GitApi& git, const std::filesystem::path& repo,
                                    const SnapshotPlan& plan, const git::RefMap& parent_refs,
                                    git::CatFileSession* objects) {
    AncestryAnswers answers;
    // Only the moved refs are asked about (not every parent ref: 100,000 on a
    // large host), all in one question; a parent tip the repository lacks
    // cannot be an ancestor of any of them.
    std::vector<std::string> names;
    std::vector<std::pair<std::string, std::string>> pairs;
    for (const auto& name : plan.moved) {
        const auto& change = plan.ledger.changes.at(name);
        if (!parent_refs.contains(name)) {
            answers[name] = false;
            continue;
        }
        names.push_back(name);
        pairs.emplace_back(change.old_oid, change.new_oid);
    }
    auto forward = objects != nullptr ? git::ancestry(git, repo, pairs, *objects)
                                      : git::ancestry(git, repo, pairs, git::k_session_timeout);
    if (!forward)
        return fail(forward.error());
    if (forward->size() != names.size())
        return fail(Error::internal("ancestry: one answer per question expected"));
    for (std::size_t i = 0; i < names.size(); ++i)
        answers[names[i]] = (*forward)[i];
    return answers;
}

Ledger settle_ledger(std::string_view repository, const SnapshotPlan& plan, const AncestryAnswers& answers) {
    auto ledger = ledger_of(plan, answers);
    for (const auto& [name, c] : ledger.changes)
        if (c.change == RefChangeKind::rewritten || c.change == RefChangeKind::deleted)
            spdlog::warn("{}: ref {} was {} (old tip {})", repository, name, to_string(c.change), c.old_oid);
    return ledger;
}

} // namespace snapshotter::snapshot
