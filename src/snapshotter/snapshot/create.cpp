// The snapshot of one repository: list the remote's refs, decide between
// unchanged / empty / incremental / full, record how every ref moved, and
// publish in commit order: bundle, then manifest, then the latest pointer.
#include "snapshotter/snapshot/create.hpp"

#include "snapshotter/git/index_pack.hpp"
#include "snapshotter/git/protocol.hpp"
#include "snapshotter/git/refname.hpp"
#include "snapshotter/git/stream.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/exactness.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/hash.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/time.hpp"

#include <fmt/format.h>
#include <functional>
#include <memory>
#include <set>
#include <spdlog/spdlog.h>
#include <unistd.h>

namespace snapshotter::snapshot {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

class Deadline {
  public:
    explicit Deadline(int seconds) : m_end(SteadyClock::now() + std::chrono::seconds{seconds}) {}
    // Time left, at least one second so a last step can report its error.
    [[nodiscard]] milliseconds left() const {
        auto rest = std::chrono::duration_cast<milliseconds>(m_end - SteadyClock::now());
        return std::max(rest, milliseconds{1000});
    }

  private:
    SteadyClock::time_point m_end;
};

} // namespace

git::Remote remote_of(const job::Repository& repo, const job::Options& options) {
    git::Remote remote{repo.url, {options.allow_http, options.allow_file}, "", "", {}};
    remote.redirects = options.http.follow_redirects;
    remote.ssh.known_hosts = options.ssh.known_hosts;
    remote.ssh.host_key_policy = options.ssh.host_key_policy == "accept_new" ? git::HostKeyPolicy::accept_new
                                                                             : git::HostKeyPolicy::strict;
    if (repo.credentials) {
        remote.username = repo.credentials->username;
        if (!repo.credentials->token_env.empty()) {
            remote.password = job::process_env(repo.credentials->token_env).value_or("");
            register_secret(remote.password);
        }
        if (!repo.credentials->ssh_key_env.empty()) {
            remote.ssh.private_key = job::process_env(repo.credentials->ssh_key_env).value_or("");
            register_secret(remote.ssh.private_key);
            // Each line on its own too, in case a tool quotes one.
            for (std::string_view rest = remote.ssh.private_key; !rest.empty();) {
                auto line = rest.substr(0, rest.find('\n'));
                if (line.size() >= 16 && !line.starts_with("-----"))
                    register_secret(line);
                rest.remove_prefix(std::min(rest.size(), line.size() + 1));
            }
        }
    }
    return remote;
}

namespace {

nlohmann::json bundle_json(const BundleInfo& b) {
    return {{"key", b.key}, {"size", b.size}, {"sha256", b.sha256}};
}

// Answers whether the commit `from` is an ancestor of `to`; nullopt when it cannot tell.
using Ancestry = std::function<Result<std::optional<bool>>(const std::string& from, const std::string& to)>;

// How each ref moved from `previous` to `current`.
Result<std::map<std::string, RefChange>> ledger(const git::RefMap& previous, const git::RefMap& current,
                                                const Ancestry& ancestry) {
    std::map<std::string, RefChange> changes;
    for (const auto& [name, target] : current) {
        auto it = previous.find(name);
        if (it == previous.end()) {
            changes[name] = {"created", "", target.oid};
            continue;
        }
        if (it->second.oid == target.oid)
            continue;
        auto forward = ancestry(it->second.oid, target.oid);
        if (!forward)
            return fail(forward.error());
        const char* kind = !*forward ? "updated" : **forward ? "fast_forward" : "rewritten";
        changes[name] = {kind, it->second.oid, target.oid};
    }
    for (const auto& [name, target] : previous)
        if (!current.contains(name))
            changes[name] = {"deleted", target.oid, ""};
    return changes;
}

// The ancestry oracle of a mirror that holds every current ref: an old tip
// missing from it cannot be an ancestor of any of them.
Ancestry mirror_ancestry(const Context& ctx, const std::filesystem::path& mirror,
                         const git::RefMap& previous) {
    std::vector<std::string> old_tips;
    for (const auto& [name, target] : previous)
        old_tips.push_back(target.oid);
    auto present =
        std::make_shared<Result<std::map<std::string, std::string>>>(ctx.git.object_types(mirror, old_tips));
    return [&ctx, mirror, present](const std::string& from,
                                   const std::string& to) -> Result<std::optional<bool>> {
        if (!*present)
            return fail(present->error());
        if (!(*present)->contains(from))
            return std::optional<bool>(false);
        auto a = ctx.git.is_ancestor(mirror, from, to);
        if (!a)
            return fail(a.error());
        return std::optional<bool>(*a);
    };
}

// Record `changes` in `manifest`: counts, and the old tips of rewritten,
// deleted and updated refs added to the preserved map.
void apply_ledger(Manifest& manifest, std::map<std::string, RefChange> changes, int& rewritten,
                  int& deleted) {
    manifest.changes = std::move(changes);
    for (const auto& [name, c] : manifest.changes) {
        if (c.change == "created" || c.change == "fast_forward")
            continue;
        rewritten += c.change == "rewritten" ? 1 : 0;
        deleted += c.change == "deleted" ? 1 : 0;
        manifest.preserved[manifest.snapshot_id + "/" + name] = c.old_oid;
        if (c.change != "updated")
            spdlog::warn("{}: ref {} was {} (old tip {})", manifest.repository, name, c.change, c.old_oid);
    }
}

// Whether the next snapshot after `previous` may be an incremental one.
bool chain_allows_incremental(const Manifest& previous, const job::Options& options,
                              const std::string& format) {
    if (previous.bundles.empty() || previous.object_format != format)
        return false;
    if (static_cast<int>(previous.bundles.size()) >= options.full_every)
        return false;
    std::uint64_t incrementals = 0;
    for (std::size_t i = 1; i < previous.bundles.size(); ++i)
        incrementals += previous.bundles[i].size;
    return static_cast<double>(incrementals) <=
           options.full_size_ratio * static_cast<double>(previous.bundles[0].size);
}

// True when every bundle of `previous`'s chain is still in storage.
Result<bool> chain_intact(const Context& ctx, const Manifest& previous) {
    for (const auto& bundle : previous.bundles) {
        auto info = ctx.storage.head(bundle.key);
        if (!info)
            return fail(info.error());
        if (!*info || (*info)->size != bundle.size) {
            spdlog::warn("{}: bundle {} of snapshot {} is missing or truncated; taking a full snapshot",
                         previous.repository, bundle.key, previous.snapshot_id);
            return false;
        }
    }
    return true;
}

// Record `head` in `manifest`.
void set_head(Manifest& manifest, const git::HeadState& head) {
    manifest.head_kind = head.kind;
    manifest.head.reset();
    manifest.head_oid.clear();
    if (head.kind == git::HeadKind::symbolic || head.kind == git::HeadKind::unborn)
        manifest.head = head.target;
    else if (head.kind == git::HeadKind::detached)
        manifest.head_oid = head.target;
}

// The remote's selected refs, HEAD and object format.
struct Listing {
    git::RefMap selected;                       // selected and storable: what the snapshot must record
    std::map<std::string, std::string> refused; // selected but not storable, with why (git/refname.hpp)
    git::HeadState head;
    std::string object_format;
};

Result<Listing> list_with_cli(const Context& ctx, const job::Repository& repo, const git::Remote& remote,
                              const Deadline& deadline) {
    auto state = ctx.git.ls_remote(remote, deadline.left());
    if (!state)
        return fail(state.error());
    if (state->refs.size() > static_cast<std::size_t>(ctx.job.options.max_refs))
        return fail(Error::git(
            fmt::format("ls-remote {}: the server advertised {} refs, more than {} (options.max_refs)",
                        redact_url(remote.url), state->refs.size(), ctx.job.options.max_refs)));
    auto screened = git::screen_refs(git::select_refs(state->refs, repo.refs), redact_url(remote.url));
    if (!screened)
        return fail(screened.error());
    Listing listing{std::move(screened->kept), std::move(screened->refused),
                    git::classify_head(state->head, state->head_oid), ""};
    if (!state->refs.empty()) {
        listing.object_format = git::object_format_of(state->refs.begin()->second.oid);
    } else {
        auto probe = ctx.git.probe_empty_remote(remote, deadline.left());
        if (!probe)
            return fail(probe.error());
        listing.object_format = probe->first;
        listing.head = git::classify_head(probe->second, std::nullopt);
    }
    if (listing.object_format.empty())
        return fail(Error::git(fmt::format("{}: unrecognised object id length", repo.name)));
    return listing;
}

git::StreamRequest stream_request(const job::Repository& repo, const git::Remote& remote,
                                  const job::Options& options, const Deadline& deadline) {
    git::StreamRequest request;
    request.transport.url = remote.url;
    request.transport.policy = remote.policy;
    request.transport.username = remote.username;
    request.transport.password = remote.password;
    request.transport.ssh = remote.ssh;
    request.transport.redirects = remote.redirects;
    request.transport.timeout = deadline.left();
    request.patterns = repo.refs;
    request.max_refs = static_cast<std::size_t>(options.max_refs);
    request.max_pack_bytes = static_cast<std::uint64_t>(options.max_pack_bytes);
    request.allow_shallow = options.allow_shallow;
    return request;
}

// Bytes in the object store of `repo` (loose objects and packs); 0 when absent.
std::uint64_t object_store_bytes(const std::filesystem::path& repo) {
    std::uint64_t total = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(repo / "objects", ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (std::error_code file_ec; it->is_regular_file(file_ec))
            if (auto size = it->file_size(file_ec); !file_ec)
                total += size;
    return total;
}

// What the write phase produced.
struct Produced {
    int rewritten = 0;
    int deleted = 0;
};

// `options.cache_dir`/`sub`, created when missing. A directory that cannot be
// created (a read-only root, a HOME that is not writable, as in a container run
// with --read-only) fails with a message naming the payload key that moves it.
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

// The git-CLI engine: fetch into the cached mirror, then stream `git bundle
// create` (full, or incremental against the previous tips) into storage.
Result<Produced> produce_with_cli(const Context& ctx, const job::Repository& repo, const git::Remote& remote,
                                  const Listing& listing, const std::optional<Manifest>& previous,
                                  bool incremental_allowed, Manifest& manifest, const Deadline& deadline) {
    const auto& options = ctx.job.options;
    Produced produced;
    // One writer per mirror at a time.
    auto mirrors = cache_subdir(options, "mirrors");
    if (!mirrors)
        return fail(mirrors.error());
    auto mirror = *mirrors / (layout::repo_key(repo.name) + ".git");
    auto lock = FileLock::acquire(*mirrors / (layout::repo_key(repo.name) + ".lock"));
    if (!lock)
        return fail(lock.error());
    auto step = SteadyClock::now();
    const auto& selected = listing.selected;
    // An exact ref the remote does not have would fail the fetch: ask only for those it listed.
    // When a name was refused, every other one is asked for by name, so git never sees it.
    std::vector<std::string> patterns;
    if (listing.refused.empty()) {
        for (const auto& p : repo.refs)
            if (p.ends_with('*') || selected.contains(p))
                patterns.push_back(p);
    } else {
        for (const auto& [name, target] : selected)
            patterns.push_back(name);
    }
    const auto stored_before = object_store_bytes(mirror);
    const auto shallow = options.allow_shallow ? git::Shallow::accept : git::Shallow::refuse;
    if (auto s =
            ctx.git.update_mirror(mirror, manifest.object_format, remote, patterns, deadline.left(), shallow);
        !s)
        return fail(s.error());
    // A detached HEAD may hold an object no selected ref reaches: fetch it by
    // name, so the bundle carries it (as k_head_ref) and restore can detach there.
    std::optional<std::string> head_tip;
    if (listing.head.kind == git::HeadKind::detached) {
        auto fetched = ctx.git.fetch_head(mirror, remote, deadline.left(), shallow);
        if (!fetched)
            return fail(fetched.error());
        if (auto s = check_recorded_head(repo.name, listing.head, {git::HeadKind::detached, *fetched}); !s)
            return fail(s.error());
        head_tip = *fetched;
    }
    manifest.timings_ms["fetch"] = elapsed_ms(step);
    // git fetch cannot be capped while it runs: check what it added, and drop
    // a mirror that grew past the limit rather than keep the server's bytes.
    const auto stored_after = object_store_bytes(mirror);
    const auto added = stored_after > stored_before ? stored_after - stored_before : 0;
    if (options.max_pack_bytes > 0 && added > static_cast<std::uint64_t>(options.max_pack_bytes)) {
        std::error_code ec;
        std::filesystem::remove_all(mirror, ec);
        return fail(Error::git(
            fmt::format("fetch {}: the fetch added {} bytes, more than {} (options.max_pack_bytes)",
                        redact_url(remote.url), added, options.max_pack_bytes)));
    }
    auto mirror_refs = ctx.git.local_refs(mirror);
    if (!mirror_refs)
        return fail(mirror_refs.error());
    manifest.refs = git::select_refs(*mirror_refs, repo.refs);
    // The proof before anything is written: git recorded exactly what was listed.
    if (auto s = check_recorded_refs(repo.name, selected, manifest.refs); !s)
        return fail(s.error());
    // A shallow upstream made the mirror shallow (options.allow_shallow): record its boundary.
    if (shallow == git::Shallow::accept) {
        auto roots = git::read_shallow(mirror);
        if (!roots)
            return fail(roots.error());
        manifest.shallow = std::move(*roots);
    }
    if (manifest.refs.empty()) {
        manifest.kind = "empty";
        return produced;
    }

    // The ledger; old tips stay reachable in the mirror so later full bundles carry them.
    if (previous) {
        auto changes = ledger(previous->refs, manifest.refs, mirror_ancestry(ctx, mirror, previous->refs));
        if (!changes)
            return fail(changes.error());
        apply_ledger(manifest, std::move(*changes), produced.rewritten, produced.deleted);
        git::RefMap keep;
        std::vector<std::string> oids;
        for (const auto& [key, oid] : manifest.preserved) {
            keep[preserved_ref_name(key)] = {oid, ""};
            oids.push_back(oid);
        }
        auto present = ctx.git.object_types(mirror, oids);
        if (!present)
            return fail(present.error());
        for (auto it = keep.begin(); it != keep.end();)
            it = present->contains(it->second.oid) ? std::next(it) : keep.erase(it);
        if (auto s = ctx.git.add_refs(mirror, keep); !s)
            return fail(s.error());
    }

    std::vector<std::string> revs;
    bool write = true;
    if (incremental_allowed) {
        manifest.kind = "incremental";
        manifest.bundles = previous->bundles;
        std::vector<std::string> tips, old_tips;
        for (const auto& [name, target] : manifest.refs) {
            auto it = previous->refs.find(name);
            if (it == previous->refs.end() || it->second.oid != target.oid) {
                revs.push_back(name);
                tips.push_back(target.oid);
            }
        }
        // The previous tips, peeled to commits, are what the new bundle may assume.
        for (const auto& [name, target] : previous->refs)
            old_tips.push_back(target.peeled.empty() ? target.oid : target.peeled);
        auto present = ctx.git.object_types(mirror, old_tips);
        if (!present)
            return fail(present.error());
        std::vector<std::string> excluded;
        for (const auto& [oid, type] : *present)
            if (type == "commit")
                excluded.push_back(oid);
        auto fresh = ctx.git.has_new_objects(mirror, tips, excluded, deadline.left());
        if (!fresh)
            return fail(fresh.error());
        // Refs-only changes (deletions, rewinds, new refs on old commits) need no pack.
        write = !tips.empty() && *fresh;
        if (head_tip) {
            revs.emplace_back(git::k_head_ref);
            auto head_fresh = ctx.git.has_new_objects(mirror, {*head_tip}, excluded, deadline.left());
            if (!head_fresh)
                return fail(head_fresh.error());
            write = write || *head_fresh;
        }
        for (const auto& oid : excluded)
            revs.push_back("^" + oid);
    } else {
        manifest.kind = "full";
        manifest.bundles.clear();
        auto refs_now = ctx.git.local_refs(mirror);
        if (!refs_now)
            return fail(refs_now.error());
        for (const auto& [name, target] : manifest.refs)
            revs.push_back(name);
        for (const auto& [name, target] : *refs_now)
            if (name.starts_with("refs/snapshotter/preserved/"))
                revs.push_back(name);
        if (head_tip)
            revs.emplace_back(git::k_head_ref);
        // Preserved tips the new chain cannot carry are dropped from the manifest.
        for (auto it = manifest.preserved.begin(); it != manifest.preserved.end();)
            it = refs_now->contains(preserved_ref_name(it->first)) ? std::next(it)
                                                                   : manifest.preserved.erase(it);
    }
    if (write) {
        step = SteadyClock::now();
        // The bundle is committed only when its header lists the manifest's refs.
        const auto scope = manifest.kind == "full" ? HeaderScope::every_ref : HeaderScope::changed_refs;
        auto check = [&](const git::BundleHeader& header) {
            return check_bundle_header(repo.name, header, manifest.refs, scope);
        };
        auto bundle = store_bundle(
            ctx.storage, ctx.git, mirror, revs, layout::bundle_key(repo.name, manifest.snapshot_id),
            manifest.snapshot_id, deadline.left(), static_cast<std::uint64_t>(options.max_pack_bytes), check);
        if (!bundle)
            return fail(bundle.error());
        manifest.timings_ms["bundle"] = elapsed_ms(step);
        manifest.bundles.push_back(std::move(*bundle));
    }
    return produced;
}

// The repository in which `options.verify: index` runs git index-pack:
// cache_dir/verify/<repo-key>.git, locked while in use. For an incremental it
// must hold the previous snapshot's objects (a thin pack's bases): it is
// reused while its refs equal the previous manifest's and otherwise rebuilt
// from the chain in storage. A full snapshot starts from an empty one.
struct IndexRepo {
    std::filesystem::path path;
    FileLock lock;
};

Result<IndexRepo> prepare_index_repo(const Context& ctx, const job::Repository& repo, const Manifest* base,
                                     const std::string& object_format, const Deadline& deadline) {
    auto verify_dir = cache_subdir(ctx.job.options, "verify");
    if (!verify_dir)
        return fail(verify_dir.error());
    const auto& dir = *verify_dir;
    std::error_code ec;
    auto lock = FileLock::acquire(dir / (layout::repo_key(repo.name) + ".lock"));
    if (!lock)
        return fail(lock.error());
    IndexRepo index{dir / (layout::repo_key(repo.name) + ".git"), std::move(*lock)};
    if (base != nullptr && std::filesystem::exists(index.path)) {
        if (auto refs = ctx.git.local_refs(index.path); refs && *refs == base->refs)
            return index;
    }
    std::filesystem::remove_all(index.path, ec);
    if (ec)
        return fail(Error::internal(fmt::format("cannot remove {}: {}", index.path.string(), ec.message())));
    if (base == nullptr) {
        if (auto s = ctx.git.init_bare(index.path, object_format); !s)
            return fail(s.error());
        return index;
    }
    auto step = SteadyClock::now();
    auto scratch = TempDir::create("verify-chain");
    if (!scratch)
        return fail(scratch.error());
    auto built = materialize(ctx.storage, ctx.git, *base, index.path, scratch->path(), deadline.left());
    if (!built) {
        std::filesystem::remove_all(index.path, ec);
        return fail(built.error());
    }
    spdlog::info("{}: rebuilt the objects of snapshot {} for index verification in {} ms", repo.name,
                 base->snapshot_id, elapsed_ms(step));
    return index;
}

// Passes a bundle to storage and, when given, to git index-pack on the way.
class IndexingWriter final : public storage::ObjectWriter {
  public:
    IndexingWriter(storage::ObjectWriter& inner, git::PackIndexer* indexer)
        : m_inner(inner), m_indexer(indexer) {}
    Status write(std::span<const std::byte> data) override {
        if (m_indexer != nullptr)
            if (auto s = m_indexer->feed(data); !s)
                return s;
        return m_inner.write(data);
    }
    Status commit() override { return m_inner.commit(); }
    void abort() override { m_inner.abort(); }

  private:
    storage::ObjectWriter& m_inner;
    git::PackIndexer* m_indexer;
};

// How long a listed session may wait for its fetch before it is reopened.
constexpr auto k_session_idle = std::chrono::seconds{20};

// The streaming engine: the server's pack goes straight into the bundle in
// storage; an incremental sends the previous tips as haves. No local clone.
// With `options.verify: index` the pack also goes through git index-pack,
// and the bundle is committed only when git accepted it.
Result<Produced> produce_with_stream(const Context& ctx, const job::Repository& repo,
                                     const git::Remote& remote, const Listing& listing,
                                     std::optional<git::ListedRemote>& session,
                                     const std::optional<Manifest>& previous, bool incremental_allowed,
                                     Manifest& manifest, const Deadline& deadline) {
    Produced produced;
    std::optional<IndexRepo> index_repo;
    std::optional<git::PackIndexer> indexer;
    if (ctx.job.options.verify == "index") {
        auto prepared = prepare_index_repo(ctx, repo, incremental_allowed ? &*previous : nullptr,
                                           manifest.object_format, deadline);
        if (!prepared && incremental_allowed && prepared.error().kind == ErrorKind::Integrity) {
            // The chain cannot be replayed: self-heal with a new full chain.
            spdlog::warn("{}: previous chain unusable for index verification ({}); taking a full snapshot",
                         repo.name, prepared.error().message);
            incremental_allowed = false;
            auto fresh = prepare_index_repo(ctx, repo, nullptr, manifest.object_format, deadline);
            if (!fresh)
                return fail(fresh.error());
            index_repo.emplace(std::move(*fresh));
        } else if (!prepared) {
            return fail(prepared.error());
        } else {
            index_repo.emplace(std::move(*prepared));
        }
        auto started = git::PackIndexer::start(ctx.git, index_repo->path, deadline.left());
        if (!started)
            return fail(started.error());
        indexer.emplace(std::move(*started));
    }
    auto key = layout::bundle_key(repo.name, manifest.snapshot_id);
    auto writer = ctx.storage.create(key, Overwrite::no);
    if (!writer)
        return fail(writer.error());
    IndexingWriter out(**writer, indexer ? &*indexer : nullptr);
    auto step = SteadyClock::now();
    // The session that listed the refs fetches too, unless it sat idle long
    // enough (index preparation) for the server to have dropped it.
    if (session && SteadyClock::now() - session->listed_at() > k_session_idle)
        session.reset();
    auto request = stream_request(repo, remote, ctx.job.options, deadline);
    auto streamed =
        session ? (incremental_allowed ? session->incremental_bundle(previous->refs, out, previous->head_oid)
                                       : session->full_bundle(out))
        : incremental_allowed
            ? git::stream_incremental_bundle(request, previous->refs, out, previous->head_oid)
            : git::stream_full_bundle(request, out);
    if (!streamed) {
        out.abort();
        return fail(streamed.error());
    }
    // The proof before anything is committed: the refs the bundle lists and
    // the manifest will record are exactly those listed (a session reopened
    // after an idle wait lists again, and the server may have moved on).
    if (auto s = check_recorded_refs(repo.name, listing.selected, streamed->refs); !s) {
        out.abort();
        return fail(s.error());
    }
    if (auto s = check_recorded_head(repo.name, listing.head, streamed->head_state); !s) {
        out.abort();
        return fail(s.error());
    }
    // A pack without objects (a new ref on a commit the chain has) is not worth a bundle.
    if (streamed->pack_written && streamed->object_count == 0 && incremental_allowed)
        streamed->pack_written = false;
    if (streamed->pack_written) {
        manifest.timings_ms["stream"] = elapsed_ms(step);
        if (indexer) {
            step = SteadyClock::now();
            auto indexed = indexer->finish();
            if (!indexed) {
                out.abort();
                // Rebuilt from the chain next time, in case the cache was what lacked a base.
                std::error_code ec;
                std::filesystem::remove_all(index_repo->path, ec);
                return fail(indexed.error());
            }
            manifest.timings_ms["index_pack"] = elapsed_ms(step);
        }
        if (auto s = out.commit(); !s)
            return fail(s.error());
    } else {
        out.abort();
    }
    if (indexer)
        indexer->cancel();
    manifest.refs = streamed->refs;
    set_head(manifest, streamed->head_state);
    // A shallow upstream (options.allow_shallow): the boundary this fetch
    // reported and, for an incremental, the boundary the chain already has.
    std::set<std::string> shallow(streamed->shallow.begin(), streamed->shallow.end());
    if (incremental_allowed)
        shallow.insert(previous->shallow.begin(), previous->shallow.end());
    manifest.shallow.assign(shallow.begin(), shallow.end());
    if (incremental_allowed) {
        manifest.kind = "incremental";
        manifest.bundles = previous->bundles;
    } else {
        manifest.kind = manifest.refs.empty() ? "empty" : "full";
        manifest.bundles.clear();
        // A stateless full bundle cannot carry old tips the server no longer has.
        if (!manifest.preserved.empty())
            spdlog::info("{}: a new full chain starts; {} preserved tips stay in the older chain", repo.name,
                         manifest.preserved.size());
        manifest.preserved.clear();
    }
    if (streamed->pack_written)
        manifest.bundles.push_back(BundleInfo{manifest.snapshot_id, key, streamed->bundle_size,
                                              streamed->sha256, streamed->prerequisites});
    if (previous) {
        // Without local history, a moved ref is "updated": whether it was a
        // fast-forward is not known, so its old tip is preserved either way.
        // The index repository of an incremental holds both old and new
        // objects, so there the ledger can tell.
        Ancestry ancestry = [](const std::string&, const std::string&) -> Result<std::optional<bool>> {
            return std::optional<bool>{};
        };
        if (index_repo && incremental_allowed)
            ancestry = mirror_ancestry(ctx, index_repo->path, previous->refs);
        auto changes = ledger(previous->refs, manifest.refs, ancestry);
        if (!changes)
            return fail(changes.error());
        apply_ledger(manifest, std::move(*changes), produced.rewritten, produced.deleted);
        // A new full chain cannot carry the old tips: deletions are counted and logged, not preserved.
        if (!incremental_allowed)
            manifest.preserved.clear();
    }
    // The index repository now matches this snapshot, ready for the next incremental.
    if (index_repo)
        if (auto s = ctx.git.set_refs(index_repo->path, manifest.refs, manifest.head); !s) {
            spdlog::warn("{}: index verification cache dropped: {}", repo.name, s.error().message);
            std::error_code ec;
            std::filesystem::remove_all(index_repo->path, ec);
        }
    return produced;
}

} // namespace

Result<RepoOutcome> snapshot_repository(const Context& ctx, const job::Repository& repo,
                                        std::optional<LatestRead> latest) {
    const auto& options = ctx.job.options;
    const auto start = SteadyClock::now();
    const Deadline deadline(options.timeout_s);
    const auto remote = remote_of(repo, options);
    Manifest manifest;
    const auto now = current_time();
    manifest.snapshot_id = new_snapshot_id(now);
    manifest.repository = repo.name;
    manifest.source_url = redact_url(repo.url);
    manifest.created_at = format_rfc3339(now);
    manifest.job_id = ctx.job.job_id;
    manifest.git_version = ctx.git.version();
    manifest.ref_patterns = repo.refs;

    // 1. List the remote's refs: the only network call for an unchanged
    //    repository. auto falls back to git when the server is not v2.
    auto step = SteadyClock::now();
    bool use_stream = options.engine != "cli";
    Result<Listing> listing = fail(Error::internal("not listed"));
    std::optional<git::ListedRemote> session; // kept open for the fetch, if one follows
    if (use_stream) {
        auto listed = git::ListedRemote::open(stream_request(repo, remote, options, deadline));
        if (listed) {
            const auto& l = listed->listing();
            listing = Listing{l.refs, l.refused, l.head_state, l.object_format};
            session.emplace(std::move(*listed));
        } else if (options.engine == "auto" && git::is_protocol_refusal(listed.error())) {
            spdlog::info("{}: the stream engine cannot use this server ({}); using git", repo.name,
                         listed.error().message);
            manifest.engine_fallback = redact(listed.error().message);
            use_stream = false;
        } else {
            return fail(listed.error());
        }
    }
    if (!use_stream)
        listing = list_with_cli(ctx, repo, remote, deadline);
    if (!listing)
        return fail(listing.error());
    // git ls-remote never shows an unborn HEAD; a protocol v2 server says it
    // when asked, so both engines record the same HEAD. (v0 cannot say it.)
    if (!use_stream && listing->head.kind == git::HeadKind::absent && !listing->selected.empty())
        if (auto l = git::list_remote(stream_request(repo, remote, options, deadline));
            l && l->head_state.kind == git::HeadKind::unborn)
            listing->head = l->head_state;
    manifest.engine = use_stream ? "stream" : "cli";
    manifest.timings_ms["list"] = elapsed_ms(step);
    set_head(manifest, listing->head);
    manifest.object_format = listing->object_format;
    const auto& selected = listing->selected;

    // 2. The previous snapshot; a missing, corrupt or broken one means a full snapshot.
    if (!latest)
        latest = read_latest_manifest(ctx.storage, repo.name);
    std::optional<Manifest> previous;
    if (*latest) {
        previous = std::move(**latest);
    } else if (latest->error().kind == ErrorKind::Storage) {
        return fail(latest->error());
    } else {
        spdlog::warn("{}: previous snapshot unreadable ({}); taking a full snapshot", repo.name,
                     latest->error().message);
    }
    if (previous) {
        auto intact = chain_intact(ctx, *previous);
        if (!intact)
            return fail(intact.error());
        if (!*intact)
            previous.reset();
    }
    // A shallow chain continues only while options.allow_shallow does: without
    // it a full snapshot fetches again, and refuses the upstream if it is still shallow.
    if (previous && !previous->shallow.empty() && !options.allow_shallow) {
        spdlog::info("{}: the previous snapshot is shallow and options.allow_shallow is off; taking a full "
                     "snapshot",
                     repo.name);
        previous.reset();
    }
    if (previous) {
        manifest.parent = previous->snapshot_id;
        manifest.preserved = previous->preserved;
    }
    const bool unchanged =
        previous && previous->refs == selected && previous->head == manifest.head &&
        previous->head_kind == manifest.head_kind && previous->head_oid == manifest.head_oid &&
        previous->object_format == manifest.object_format && previous->ref_patterns == repo.refs;
    const bool incremental_allowed =
        previous && chain_allows_incremental(*previous, options, manifest.object_format);

    if (ctx.dry_run) {
        std::string plan = unchanged             ? "unchanged"
                           : selected.empty()    ? "empty"
                           : incremental_allowed ? "incremental"
                                                 : "full";
        return RepoOutcome{unchanged ? "unchanged" : "ok",
                           {{"plan", plan},
                            {"refs", selected.size()},
                            {"refs_refused", listing->refused.size()},
                            {"refused_refs", refused_json(listing->refused)},
                            {"engine", manifest.engine},
                            {"snapshot_id", nullptr}}};
    }

    // 3. Write what changed.
    Produced produced;
    if (unchanged) {
        // Nothing moved: a manifest that points at the same chain.
        manifest.kind = "unchanged";
        manifest.refs = previous->refs;
        manifest.bundles = previous->bundles;
        manifest.shallow = previous->shallow;
    } else if (selected.empty()) {
        // No refs: a manifest and no bundle (a bundle cannot be empty).
        manifest.kind = "empty";
        if (previous)
            for (const auto& [name, target] : previous->refs) {
                manifest.changes[name] = {"deleted", target.oid, ""};
                ++produced.deleted;
            }
    } else {
        auto made = use_stream ? produce_with_stream(ctx, repo, remote, *listing, session, previous,
                                                     incremental_allowed, manifest, deadline)
                               : produce_with_cli(ctx, repo, remote, *listing, previous, incremental_allowed,
                                                  manifest, deadline);
        if (!made)
            return fail(made.error());
        produced = *made;
    }
    manifest.timings_ms["total"] = elapsed_ms(start);
    // The proof of HEAD, for every kind of snapshot: the manifest records the
    // HEAD that was listed (each engine checked it before its bundle was committed).
    if (auto s = check_recorded_head(repo.name, listing->head, head_state(manifest)); !s)
        return fail(s.error());

    // 4. Publish: manifest (never overwritten), then the latest pointer, which
    //    only moves forward (a concurrent job may have published a newer one).
    auto text = serialize_manifest(manifest);
    if (!text)
        return fail(text.error());
    auto manifest_key = layout::manifest_key(repo.name, manifest.snapshot_id);
    if (auto s = ctx.storage.put(manifest_key, *text, Overwrite::no); !s)
        return fail(s.error());
    // The snapshot is committed with its manifest: a pointer that cannot be
    // moved (a store whose conditional writes misbehave, an outage now) is a
    // warning, since readers fall back to the newest manifest.
    std::optional<std::string> latest_warning;
    if (auto moved = advance_latest(ctx.storage, repo.name, manifest.snapshot_id, manifest_key); !moved) {
        latest_warning = fmt::format("latest.json not advanced to {}: {}", manifest.snapshot_id,
                                     redact(moved.error().message));
        spdlog::warn("{}: {}", repo.name, *latest_warning);
    } else if (!*moved) {
        spdlog::info("{}: latest already names a newer snapshot than {}", repo.name, manifest.snapshot_id);
    }

    const bool wrote =
        !manifest.bundles.empty() && manifest.bundles.back().snapshot_id == manifest.snapshot_id;
    nlohmann::json detail = {
        {"snapshot_id", manifest.snapshot_id},
        {"kind", manifest.kind},
        {"engine", manifest.engine},
        {"engine_fallback", manifest.engine_fallback ? nlohmann::json(*manifest.engine_fallback) : nullptr},
        {"refs", manifest.refs.size()},
        {"refs_refused", listing->refused.size()},
        {"refused_refs", refused_json(listing->refused)},
        {"refs_rewritten", produced.rewritten},
        {"refs_deleted", produced.deleted},
        {"bundle", wrote ? bundle_json(manifest.bundles.back()) : nlohmann::json(nullptr)}};
    spdlog::info("{}: {} snapshot {} ({} refs, {} engine)", repo.name, manifest.kind, manifest.snapshot_id,
                 manifest.refs.size(), manifest.engine);
    if (latest_warning)
        detail["warnings"] = nlohmann::json::array({*latest_warning});
    return RepoOutcome{unchanged ? "unchanged" : "ok",
                       std::move(detail),
                       wrote ? manifest.bundles.back().size : 0,
                       produced.rewritten,
                       produced.deleted,
                       latest_warning.has_value()};
}

} // namespace snapshotter::snapshot
