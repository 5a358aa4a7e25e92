// FaultStorage: a Storage that wraps any other (memory://, file://, S3) and
// injects faults at chosen operations, so that unit tests can run an action
// in-process against a storage that fails, tears or "crashes" at every point
// in turn. LevelDB's fault-injection Env is the model.
//
// Every call is counted per operation (Op). A fault is armed for the Nth call
// of one operation, counted from construction or the last reset(), 1-based;
// Op::mutation counts every call that changes what is stored (commit, put,
// update, remove, abort_pending) in one sequence, which is what "fail each
// write in turn" iterates over. A fault is one of:
//  - Fault::error: the call does nothing and fails with a StorageError;
//  - Fault::tear: a commit, put or update stores only the first half of its
//    bytes under the key (a rename or upload that was cut), then fails; any
//    other operation fails as with Fault::error;
//  - Fault::crash: the call does nothing and fails, and the storage becomes
//    crashed: every writer not yet committed loses its bytes (its commit
//    fails, nothing is published), and every later call fails until
//    restart(). The wrapped storage then holds exactly what a process killed
//    at that point would have left.
// Writers are wrapped too: ObjectWriter::write counts as Op::write, commit
// as Op::commit. Calls are also counted per key (count(op, key)), and an
// action armed with before() runs on the wrapped storage right before a
// chosen call: another process acting between two steps of the code under
// test. The wrapped storage is not owned and must outlive this one.
#pragma once

#include "snapshotter/storage/storage.hpp"

#include <array>
#include <fmt/format.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace snapshotter::test {

// The operations FaultStorage counts and can fail.
enum class Op {
    create,        // Storage::create
    write,         // ObjectWriter::write
    commit,        // ObjectWriter::commit
    read,          // Storage::read
    get,           // Storage::get
    head,          // Storage::head
    list,          // Storage::list
    remove,        // Storage::remove
    update,        // Storage::update
    put,           // Storage::put
    list_pending,  // Storage::list_pending
    abort_pending, // Storage::abort_pending
    mutation,      // any of commit, put, update, remove, abort_pending
    count_,        // not an operation: the number of counters
};

// What an armed fault does (see the top of this file).
enum class Fault { error, tear, crash };

class FaultStorage final : public storage::Storage {
  public:
    explicit FaultStorage(storage::Storage& inner) : m_inner(inner) {}

    // Fail the `nth` call (1-based, counted since construction or reset()) of
    // `op` with `fault`. Several faults may be armed at once.
    void fail_nth(Op op, std::size_t nth, Fault fault = Fault::error) {
        std::lock_guard lock(m_mutex);
        m_armed.insert({op, nth, fault});
    }
    // How many calls of `op` were made since construction or reset().
    std::size_t count(Op op) const {
        std::lock_guard lock(m_mutex);
        return m_counts[index(op)];
    }
    // How many calls of `op` named `key` since construction or reset() (a
    // remove is counted under its first key; Op::mutation is not counted per key).
    std::size_t count(Op op, std::string_view key) const {
        std::lock_guard lock(m_mutex);
        auto it = m_key_counts.find(std::pair{op, std::string(key)});
        return it == m_key_counts.end() ? 0 : it->second;
    }
    // Run `action` on the wrapped storage once, right before the next call of
    // `op` named `key` reaches it (a remove is named by its first key).
    void before(Op op, std::string key, std::function<void(storage::Storage&)> action) {
        std::lock_guard lock(m_mutex);
        m_before.emplace(std::pair{op, std::move(key)}, std::move(action));
    }
    // Whether a Fault::crash happened and restart() has not been called.
    bool crashed() const {
        std::lock_guard lock(m_mutex);
        return m_crashed;
    }
    // Bring a crashed storage back (a new process): calls work again. Writers
    // opened before the crash stay dead.
    void restart() {
        std::lock_guard lock(m_mutex);
        m_crashed = false;
    }
    // Zero every counter, disarm every fault and drop every before() action.
    void reset() {
        std::lock_guard lock(m_mutex);
        m_counts = {};
        m_key_counts.clear();
        m_armed.clear();
        m_before.clear();
        m_crashed = false;
    }

    [[nodiscard]] std::string describe() const override { return "fault+" + m_inner.describe(); }
    Status check() override { return m_inner.check(); }

    Result<std::unique_ptr<storage::ObjectWriter>> create(std::string_view key,
                                                          Overwrite overwrite) override {
        if (auto s = enter(Op::create, key); !s)
            return fail(s.error());
        auto inner = m_inner.create(key, overwrite);
        if (!inner)
            return fail(inner.error());
        std::lock_guard lock(m_mutex);
        return std::unique_ptr<storage::ObjectWriter>(
            std::make_unique<Writer>(*this, std::string(key), overwrite, std::move(*inner), m_epoch));
    }
    Status read(std::string_view key, const OutputSink& sink) override {
        if (auto s = enter(Op::read, key); !s)
            return s;
        return m_inner.read(key, sink);
    }
    Result<std::string> get(std::string_view key, std::size_t max_bytes = std::size_t{64} << 20) override {
        if (auto s = enter(Op::get, key); !s)
            return fail(s.error());
        return m_inner.get(key, max_bytes);
    }
    Result<std::optional<storage::ObjectInfo>> head(std::string_view key) override {
        if (auto s = enter(Op::head, key); !s)
            return fail(s.error());
        return m_inner.head(key);
    }
    Result<std::vector<storage::ObjectInfo>> list(std::string_view prefix) override {
        if (auto s = enter(Op::list, prefix); !s)
            return fail(s.error());
        return m_inner.list(prefix);
    }
    Status remove(std::span<const std::string> keys) override {
        if (auto s = enter(Op::remove, keys.empty() ? "" : keys.front()); !s)
            return s;
        return m_inner.remove(keys);
    }
    Result<bool> update(std::string_view key, const storage::UpdateFn& next, Durability durability) override {
        auto s = enter(Op::update, key);
        if (!s && m_last == Fault::tear) {
            // Store half of what the update would have written.
            (void)m_inner.update(
                key,
                [&](const std::optional<std::string>& current) -> std::optional<std::string> {
                    auto wanted = next(current);
                    if (wanted)
                        wanted->resize(wanted->size() / 2);
                    return wanted;
                },
                durability);
        }
        if (!s)
            return fail(s.error());
        return m_inner.update(key, next, durability);
    }
    Status put(std::string_view key, std::string_view data, Overwrite overwrite) override {
        auto s = enter(Op::put, key);
        if (!s && m_last == Fault::tear)
            (void)m_inner.put(key, data.substr(0, data.size() / 2), Overwrite::yes);
        if (!s)
            return s;
        return m_inner.put(key, data, overwrite);
    }
    Result<std::vector<storage::PendingUpload>> list_pending(std::string_view prefix) override {
        if (auto s = enter(Op::list_pending, prefix); !s)
            return fail(s.error());
        return m_inner.list_pending(prefix);
    }
    Status abort_pending(const storage::PendingUpload& upload) override {
        if (auto s = enter(Op::abort_pending, upload.key); !s)
            return s;
        return m_inner.abort_pending(upload);
    }

  private:
    struct Armed {
        Op op;
        std::size_t nth;
        Fault fault;
        auto operator<=>(const Armed&) const = default;
    };

    static std::size_t index(Op op) { return static_cast<std::size_t>(op); }
    static bool mutates(Op op) {
        return op == Op::commit || op == Op::put || op == Op::update || op == Op::remove ||
               op == Op::abort_pending;
    }

    // Count a call of `op` on `key` and run the before() action armed for it;
    // fails when the storage is crashed or a fault is armed for this call
    // (m_last then says which).
    Status enter(Op op, std::string_view key) {
        std::function<void(storage::Storage&)> action;
        auto s = count_call(op, key, action);
        if (s && action)
            action(m_inner);
        return s;
    }
    Status count_call(Op op, std::string_view key, std::function<void(storage::Storage&)>& action) {
        std::lock_guard lock(m_mutex);
        if (m_crashed)
            return fail(Error::storage(fmt::format("{}: crashed before {}", describe(), key)));
        ++m_key_counts[std::pair{op, std::string(key)}];
        if (auto it = m_before.find(std::pair{op, std::string(key)}); it != m_before.end()) {
            action = std::move(it->second);
            m_before.erase(it);
        }
        std::optional<Fault> hit;
        auto check = [&](Op counted) {
            auto n = ++m_counts[index(counted)];
            for (const auto& a : m_armed)
                if (a.op == counted && a.nth == n && !hit)
                    hit = a.fault;
        };
        check(op);
        if (mutates(op))
            check(Op::mutation);
        if (!hit)
            return {};
        m_last = *hit;
        if (*hit == Fault::crash) {
            m_crashed = true;
            ++m_epoch; // writers of earlier epochs lose their bytes
        }
        return fail(Error::storage(fmt::format("{}: injected fault at {}", describe(), key)));
    }

    // Forwards to the wrapped writer, keeping a copy of the bytes for a tear.
    class Writer final : public storage::ObjectWriter {
      public:
        Writer(FaultStorage& owner, std::string key, Overwrite overwrite,
               std::unique_ptr<storage::ObjectWriter> inner, std::size_t epoch)
            : m_owner(owner), m_key(std::move(key)), m_overwrite(overwrite), m_inner(std::move(inner)),
              m_epoch(epoch) {}
        Status write(std::span<const std::byte> data) override {
            if (auto s = check(Op::write); !s)
                return s;
            m_copy.append(reinterpret_cast<const char*>(data.data()), data.size());
            return m_inner->write(data);
        }
        Status commit() override {
            if (auto s = check(Op::commit); !s) {
                m_inner->abort();
                if (m_owner.m_last == Fault::tear && !lost())
                    (void)m_owner.m_inner.put(m_key, std::string_view(m_copy).substr(0, m_copy.size() / 2),
                                              m_overwrite);
                return s;
            }
            return m_inner->commit();
        }
        void abort() override { m_inner->abort(); }

      private:
        // Whether a crash since this writer was opened lost its bytes.
        bool lost() const {
            std::lock_guard lock(m_owner.m_mutex);
            return m_epoch != m_owner.m_epoch;
        }
        Status check(Op op) {
            if (auto s = m_owner.enter(op, m_key); !s)
                return s;
            if (lost()) {
                m_inner->abort();
                return fail(Error::storage(fmt::format("{}: lost in a crash", m_key)));
            }
            return {};
        }

        FaultStorage& m_owner;
        std::string m_key;
        Overwrite m_overwrite;
        std::unique_ptr<storage::ObjectWriter> m_inner;
        std::size_t m_epoch;
        std::string m_copy;
    };

    storage::Storage& m_inner;
    mutable std::mutex m_mutex;
    std::array<std::size_t, static_cast<std::size_t>(Op::count_)> m_counts{};
    std::map<std::pair<Op, std::string>, std::size_t> m_key_counts;
    std::map<std::pair<Op, std::string>, std::function<void(storage::Storage&)>> m_before;
    std::set<Armed> m_armed;
    bool m_crashed = false;
    std::size_t m_epoch = 0;
    Fault m_last = Fault::error;
};

} // namespace snapshotter::test
