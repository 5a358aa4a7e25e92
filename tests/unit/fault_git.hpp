// FaultGit: a git::GitApi that forwards to another (usually the real Git of
// git_sandbox.hpp) and fails chosen calls, so that unit tests can run the
// actions in-process and see what each does when git fails at a given step.
// A fault is armed by method name ("fsck", "fetch_bundle", ...) and the
// 1-based count of its calls; every call is counted. The wrapped GitApi is
// not owned and must outlive this one.
#pragma once

#include "snapshotter/git/git.hpp"

#include <fmt/format.h>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace snapshotter::test {

class FaultGit final : public git::GitApi {
  public:
    explicit FaultGit(const git::GitApi& inner) : m_inner(inner) {}

    // Fail the `nth` call (1-based) of `method` with a GitError.
    void fail_nth(const std::string& method, std::size_t nth) {
        std::lock_guard lock(m_mutex);
        m_armed.insert({method, nth});
    }
    // How many times `method` was called.
    std::size_t count(const std::string& method) const {
        std::lock_guard lock(m_mutex);
        auto it = m_counts.find(method);
        return it == m_counts.end() ? 0 : it->second;
    }

    [[nodiscard]] const std::string& version() const override { return m_inner.version(); }
    Result<git::RemoteState> ls_remote(const git::Remote& remote,
                                       std::chrono::milliseconds timeout) const override {
        return call("ls_remote", [&] { return m_inner.ls_remote(remote, timeout); });
    }
    Result<std::pair<std::string, std::optional<std::string>>>
    probe_empty_remote(const git::Remote& remote, std::chrono::milliseconds timeout) const override {
        return call("probe_empty_remote", [&] { return m_inner.probe_empty_remote(remote, timeout); });
    }
    Status update_mirror(const std::filesystem::path& mirror, const std::string& object_format,
                         const git::Remote& remote, const std::vector<std::string>& patterns,
                         std::chrono::milliseconds timeout, git::Shallow shallow) const override {
        return call("update_mirror", [&] {
            return m_inner.update_mirror(mirror, object_format, remote, patterns, timeout, shallow);
        });
    }
    Result<std::string> fetch_head(const std::filesystem::path& mirror, const git::Remote& remote,
                                   std::chrono::milliseconds timeout, git::Shallow shallow) const override {
        return call("fetch_head", [&] { return m_inner.fetch_head(mirror, remote, timeout, shallow); });
    }
    Result<git::RefMap> local_refs(const std::filesystem::path& repo) const override {
        return call("local_refs", [&] { return m_inner.local_refs(repo); });
    }
    Status bundle_create(const std::filesystem::path& repo, const std::vector<std::string>& revs,
                         const OutputSink& sink, std::chrono::milliseconds timeout) const override {
        return call("bundle_create", [&] { return m_inner.bundle_create(repo, revs, sink, timeout); });
    }
    Result<git::BundleBoundary> bundle_boundary(const std::filesystem::path& repo,
                                                const std::vector<std::string>& tips,
                                                const std::vector<std::string>& excluded,
                                                std::chrono::milliseconds timeout) const override {
        return call("bundle_boundary",
                    [&] { return m_inner.bundle_boundary(repo, tips, excluded, timeout); });
    }
    Result<git::RefMap> bundle_heads(const std::filesystem::path& bundle) const override {
        return call("bundle_heads", [&] { return m_inner.bundle_heads(bundle); });
    }
    Status init_bare(const std::filesystem::path& path, const std::string& object_format) const override {
        return call("init_bare", [&] { return m_inner.init_bare(path, object_format); });
    }
    Status fetch_bundle(const std::filesystem::path& repo, const std::filesystem::path& bundle,
                        std::chrono::milliseconds timeout) const override {
        return call("fetch_bundle", [&] { return m_inner.fetch_bundle(repo, bundle, timeout); });
    }
    Status set_refs(const std::filesystem::path& repo, const git::RefMap& refs,
                    const std::optional<std::string>& head) const override {
        return call("set_refs", [&] { return m_inner.set_refs(repo, refs, head); });
    }
    Status detach_head(const std::filesystem::path& repo, const std::string& oid) const override {
        return call("detach_head", [&] { return m_inner.detach_head(repo, oid); });
    }
    Status push(const std::filesystem::path& repo, const git::Remote& remote,
                const std::vector<std::string>& refspecs, std::chrono::milliseconds timeout) const override {
        return call("push", [&] { return m_inner.push(repo, remote, refspecs, timeout); });
    }
    Status add_refs(const std::filesystem::path& repo, const git::RefMap& refs) const override {
        return call("add_refs", [&] { return m_inner.add_refs(repo, refs); });
    }
    Result<std::map<std::string, std::string>>
    object_types(const std::filesystem::path& repo, const std::vector<std::string>& oids) const override {
        return call("object_types", [&] { return m_inner.object_types(repo, oids); });
    }
    Result<bool> is_ancestor(const std::filesystem::path& repo, const std::string& ancestor,
                             const std::string& descendant) const override {
        return call("is_ancestor", [&] { return m_inner.is_ancestor(repo, ancestor, descendant); });
    }
    Status fsck(const std::filesystem::path& repo, std::chrono::milliseconds timeout) const override {
        return call("fsck", [&] { return m_inner.fsck(repo, timeout); });
    }
    Result<Child> spawn(const std::filesystem::path& repo, std::vector<std::string> args,
                        std::chrono::milliseconds timeout) const override {
        return call("spawn", [&] { return m_inner.spawn(repo, std::move(args), timeout); });
    }
    Result<git::RefMap> update_mirror_refs(const std::filesystem::path& mirror,
                                           const std::string& object_format, const git::Remote& remote,
                                           const std::vector<std::string>& patterns,
                                           std::chrono::milliseconds timeout,
                                           git::Shallow shallow) const override {
        return call("update_mirror_refs", [&] {
            return m_inner.update_mirror_refs(mirror, object_format, remote, patterns, timeout, shallow);
        });
    }
    Result<git::RefMap> update_mirror_refs_to(const std::filesystem::path& mirror,
                                              const std::string& object_format, const git::Remote& remote,
                                              const std::vector<std::string>& patterns,
                                              const git::RefMap& listed, std::chrono::milliseconds timeout,
                                              git::Shallow shallow, git::FetchBy by) const override {
        return call("update_mirror_refs_to", [&] {
            return m_inner.update_mirror_refs_to(mirror, object_format, remote, patterns, listed, timeout,
                                                 shallow, by);
        });
    }
    Status repack_geometric(const std::filesystem::path& repo,
                            std::chrono::milliseconds timeout) const override {
        return call("repack_geometric", [&] { return m_inner.repack_geometric(repo, timeout); });
    }
    Status clone_bundle(const std::filesystem::path& path, const std::filesystem::path& bundle,
                        std::chrono::milliseconds timeout) const override {
        return call("clone_bundle", [&] { return m_inner.clone_bundle(path, bundle, timeout); });
    }
    Status list_objects(const std::filesystem::path& repo, const std::vector<std::string>& tips,
                        const std::vector<std::string>& excluded, std::size_t blob_limit,
                        const git::ObjectBatchSink& on_objects,
                        std::chrono::milliseconds timeout) const override {
        return call("list_objects", [&] {
            return m_inner.list_objects(repo, tips, excluded, blob_limit, on_objects, timeout);
        });
    }

  private:
    // Count a call of `method`; run `forward` unless a fault is armed for it.
    template <typename F> auto call(const std::string& method, F&& forward) const -> decltype(forward()) {
        bool hit = false;
        {
            std::lock_guard lock(m_mutex);
            hit = m_armed.contains({method, ++m_counts[method]});
        }
        if (hit)
            return std::unexpected(Error::git(fmt::format("injected fault in {}", method)));
        return forward();
    }

    const git::GitApi& m_inner;
    mutable std::mutex m_mutex;
    mutable std::map<std::string, std::size_t> m_counts;
    std::set<std::pair<std::string, std::size_t>> m_armed;
};

} // namespace snapshotter::test
