// A small world for in-process tests of the actions (prune, verify, restore,
// gc, list, merge_reports, the catalog): an upstream repository made with the real git
// (git_sandbox.hpp), a file:// storage in a temporary directory, and
// snapshots published into it the way a snapshot run publishes them (bundle,
// then manifest, then the latest pointer), through any Storage and GitApi, so
// that FaultStorage and FaultGit can sit in between.
#pragma once

#include "git_sandbox.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/snapshot/catalog.hpp"
#include "snapshotter/snapshot/layout.hpp"
#include "snapshotter/snapshot/materialize.hpp"
#include "snapshotter/snapshot/publish.hpp"
#include "snapshotter/util/time.hpp"

#include <gtest/gtest.h>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace snapshotter::test {

// The repository name every World stores its snapshots under.
inline const std::string k_repo = "acme/app";

class World {
  public:
    World() : m_git(test_support::make_git()) {
        m_upstream = m_sandbox.make_upstream();
        auto dir = TempDir::create("test-world");
        EXPECT_TRUE(dir);
        m_dir.emplace(std::move(*dir));
        m_storage = open_store(m_dir->path() / "store");
        m_job.options.timeout_s = 60;
    }

    [[nodiscard]] storage::Storage& storage() { return *m_storage; }
    [[nodiscard]] const git::Git& git() const { return m_git; }
    [[nodiscard]] job::Job& job() { return m_job; }
    [[nodiscard]] const fs::path& dir() const { return m_dir->path(); }
    [[nodiscard]] const fs::path& store_dir() const { return m_store_dir; }

    // A file:// storage rooted at `root` (created).
    std::unique_ptr<storage::Storage> open_store(const fs::path& root) {
        fs::create_directories(root);
        m_store_dir = root;
        auto opened = storage::open({"file://" + root.string(), {}});
        EXPECT_TRUE(opened) << opened.error().message;
        return std::move(*opened);
    }

    // A storage holding a copy of the objects of the file:// storage rooted
    // at `base`, at dir()/`name`: each crash point of a test starts from the
    // same stored state.
    std::unique_ptr<storage::Storage> copy_of(const fs::path& base, const std::string& name) {
        fs::copy(base, dir() / name, fs::copy_options::recursive);
        return open_store(dir() / name);
    }

    // Replace the storage by a copy of its objects at dir()/`name`.
    void copy_store_to(const std::string& name) { m_storage = copy_of(m_store_dir, name); }

    // A new commit on main upstream, so that the next snapshot has something new.
    void commit(const std::string& text) {
        test_support::Sandbox::write(m_upstream / "README", text + "\n");
        m_sandbox.git(m_upstream, {"commit", "--quiet", "-am", text});
    }

    // Publish a snapshot of upstream as `k_repo` into `storage` through
    // `git`: a full bundle when `parent` is null, else an incremental one on
    // top of its refs; then the manifest (never overwritten); then latest.
    // Snapshot n is stamped n hours after a fixed time, so ids sort.
    Result<snapshot::Manifest> publish(storage::Storage& storage, const git::GitApi& git,
                                       const snapshot::Manifest* parent) {
        auto refs = git.local_refs(m_upstream);
        if (!refs)
            return fail(refs.error());
        snapshot::Manifest m;
        m.snapshot_id = new_snapshot_id(k_epoch + std::chrono::hours{++m_published});
        m.repository = k_repo;
        m.source_url = "file:///upstream.git";
        m.created_at = "2026-11-28T00:00:00Z";
        m.engine = "cli";
        m.git_version = git.version();
        m.object_format = "sha1";
        m.head = "refs/heads/main";
        m.head_kind = git::HeadKind::symbolic;
        m.ref_patterns = {"refs/heads/*", "refs/tags/*"};
        std::vector<std::string> revs;
        for (const auto& [name, target] : *refs)
            if (name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
                m.refs[name] = target;
                revs.push_back(name);
            }
        if (parent != nullptr) {
            m.kind = snapshot::SnapshotKind::incremental;
            m.parent = parent->snapshot_id;
            m.bundles = parent->bundles;
            std::set<std::string> old;
            for (const auto& [name, target] : parent->refs)
                old.insert(target.oid);
            for (const auto& oid : old)
                revs.push_back("^" + oid);
        } else {
            m.kind = snapshot::SnapshotKind::full;
        }
        auto key = snapshot::layout::bundle_key(k_repo, m.snapshot_id);
        auto bundle = snapshot::store_bundle(storage, git, m_upstream, revs, key, m.snapshot_id,
                                             std::chrono::seconds{60});
        if (!bundle)
            return fail(bundle.error());
        m.bundles.push_back(*bundle);
        // As a snapshot run publishes it: version 2, its table first.
        auto published = snapshot::publish_manifest(storage, m, Overwrite::no,
                                                    parent != nullptr ? parent->table : std::nullopt);
        if (!published)
            return fail(published.error());
        const auto manifest_key = *published;
        if (auto moved = snapshot::advance_latest(storage, k_repo, m.snapshot_id, manifest_key); !moved)
            return fail(moved.error());
        return m;
    }

    // Publish `count` snapshots in a chain (one new commit before each but the first).
    std::vector<snapshot::Manifest> publish_chain(std::size_t count) {
        std::vector<snapshot::Manifest> out;
        for (std::size_t i = 0; i < count; ++i) {
            if (i > 0)
                commit("change " + std::to_string(i));
            auto m = publish(*m_storage, m_git, out.empty() ? nullptr : &out.back());
            EXPECT_TRUE(m) << m.error().message;
            if (!m)
                break;
            out.push_back(std::move(*m));
        }
        return out;
    }

    // Restore `manifest` from `storage` into a new directory under dir();
    // the refs it ended with, or why it failed.
    Result<git::RefMap> restore(storage::Storage& storage, const snapshot::Manifest& manifest) {
        auto scratch = TempDir::create("test-restore");
        if (!scratch)
            return fail(scratch.error());
        return snapshot::materialize(storage, m_git, manifest, scratch->path() / "repo.git", scratch->path(),
                                     std::chrono::seconds{60});
    }

    // The context of an action on `storage` with `git`.
    snapshot::Context context(storage::Storage& storage, const git::GitApi& git, bool dry_run = false) {
        return snapshot::Context{m_job, storage, git, dry_run};
    }

  private:
    static inline const Clock::time_point k_epoch = Clock::time_point{std::chrono::seconds{1'795'000'000}};

    test_support::Sandbox m_sandbox;
    git::Git m_git;
    fs::path m_upstream;
    std::optional<TempDir> m_dir;
    fs::path m_store_dir;
    std::unique_ptr<storage::Storage> m_storage;
    job::Job m_job;
    int m_published = 0;
};

// The snapshot ids of `k_repo` in `storage`, oldest first.
inline std::vector<std::string> stored_ids(storage::Storage& storage) {
    auto ids = snapshot::list_snapshot_ids(storage, k_repo);
    EXPECT_TRUE(ids) << ids.error().message;
    if (!ids)
        return {};
    return {ids->rbegin(), ids->rend()};
}

// What every reader relies on in `storage`, whatever was interrupted: every
// manifest present lists bundles that are all present, and latest, when
// present, names a manifest that exists.
inline void expect_consistent(storage::Storage& storage, const std::string& where) {
    for (const auto& id : stored_ids(storage)) {
        auto m = snapshot::read_manifest(storage, k_repo, id);
        ASSERT_TRUE(m) << where << ": " << m.error().message;
        for (const auto& b : m->bundles) {
            auto info = storage.head(b.key);
            ASSERT_TRUE(info) << where;
            EXPECT_TRUE(info->has_value()) << where << ": " << id << " lists missing " << b.key;
        }
    }
    auto latest = storage.get(snapshot::layout::latest_key(k_repo));
    if (!latest) {
        EXPECT_EQ(latest.error().kind, ErrorKind::NotFound) << where;
        return;
    }
    auto id = snapshot::parse_latest(*latest);
    ASSERT_TRUE(id) << where << ": latest is unreadable: " << *latest;
    auto named = storage.head(snapshot::layout::manifest_key(k_repo, *id));
    ASSERT_TRUE(named) << where;
    EXPECT_TRUE(named->has_value()) << where << ": latest names missing " << *id;
}

} // namespace snapshotter::test
