// Test tool for the streaming engine: streams a full or incremental bundle of
// a repository into a file:// storage and prints one JSON object describing
// the result. Used by tests/integration/test_stream_engine.py until the CLI
// grows an engine option.
//
//   stream_probe --url URL --out DIR --key KEY [--pattern P]... [--previous REFS.json]
//                [--username U] [--password-env VAR] [--allow-http] [--progress] [--timeout-ms N]
//                [--ssh-key-env VAR] [--host-key-policy strict|accept-new|insecure]
//   stream_probe --url URL --probe      (does the server speak protocol v2?)
//   stream_probe --url URL --list       (ls-refs only)
#include "snapshotter/git/stream.hpp"
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/redact.hpp"

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

using namespace snapshotter;
using nlohmann::json;

namespace {

int print_error(const Error& e) {
    std::cout
        << json{{"ok", false}, {"error", error_kind_name(e.kind)}, {"message", redact(e.message)}}.dump()
        << "\n";
    return 1;
}

json refs_json(const git::RefMap& refs) {
    json out = json::object();
    for (const auto& [name, target] : refs)
        out[name] = json{{"oid", target.oid}, {"peeled", target.peeled}};
    return out;
}

long peak_rss_kib() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;
}

} // namespace

int main(int argc, char** argv) {
    git::StreamRequest request;
    std::string out_dir, key, previous_path, mode = "bundle";
    std::vector<std::string> patterns;
    bool progress = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "missing value for " << arg << "\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--url")
            request.transport.url = value();
        else if (arg == "--out")
            out_dir = value();
        else if (arg == "--key")
            key = value();
        else if (arg == "--pattern")
            patterns.push_back(value());
        else if (arg == "--previous")
            previous_path = value();
        else if (arg == "--username")
            request.transport.username = value();
        else if (arg == "--password-env") {
            const char* secret = std::getenv(value().c_str());
            request.transport.password = secret != nullptr ? secret : "";
        } else if (arg == "--allow-http")
            request.transport.policy.allow_http = true;
        else if (arg == "--ssh-key-env") {
            const char* key = std::getenv(value().c_str());
            request.transport.ssh.private_key = key != nullptr ? key : "";
        } else if (arg == "--host-key-policy") {
            std::string policy = value();
            request.transport.ssh.host_key_policy = policy == "accept-new" ? git::HostKeyPolicy::accept_new
                                                    : policy == "insecure" ? git::HostKeyPolicy::insecure
                                                                           : git::HostKeyPolicy::strict;
        } else if (arg == "--timeout-ms")
            request.transport.timeout = std::chrono::milliseconds{std::stoll(value())};
        else if (arg == "--progress")
            progress = true;
        else if (arg == "--probe")
            mode = "probe";
        else if (arg == "--list")
            mode = "list";
        else {
            std::cerr << "unknown argument " << arg << "\n";
            return 2;
        }
    }
    if (!patterns.empty())
        request.patterns = patterns;
    if (!request.transport.password.empty())
        register_secret(request.transport.password);
    if (progress)
        request.on_progress = [](std::string_view text) -> Status {
            std::cerr << text;
            return {};
        };
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_ms = [&] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)
            .count();
    };

    if (mode == "probe") {
        auto v2 = git::remote_speaks_v2(request.transport);
        if (!v2)
            return print_error(v2.error());
        std::cout << json{{"ok", true}, {"v2", *v2}, {"elapsed_ms", elapsed_ms()}}.dump() << "\n";
        return 0;
    }
    if (mode == "list") {
        auto listed = git::list_remote(request);
        if (!listed)
            return print_error(listed.error());
        std::cout << json{{"ok", true},
                          {"refs", refs_json(listed->refs)},
                          {"head", listed->head ? json(*listed->head) : json(nullptr)},
                          {"object_format", listed->object_format},
                          {"elapsed_ms", elapsed_ms()}}
                         .dump()
                  << "\n";
        return 0;
    }

    if (out_dir.empty() || key.empty()) {
        std::cerr << "--out and --key are required\n";
        return 2;
    }
    std::optional<git::RefMap> previous;
    if (!previous_path.empty()) {
        auto text = read_file(previous_path);
        if (!text)
            return print_error(text.error());
        git::RefMap refs;
        try {
            const json parsed = json::parse(*text);
            for (auto it = parsed.begin(); it != parsed.end(); ++it) {
                const json& target = it.value();
                refs[it.key()] = git::RefTarget{target.at("oid").get<std::string>(),
                                                target.value("peeled", std::string{})};
            }
        } catch (const std::exception& e) {
            return print_error(Error::payload(std::string("previous refs: ") + e.what()));
        }
        previous = std::move(refs);
    }

    auto storage = storage::open({.url = "file://" + out_dir});
    if (!storage)
        return print_error(storage.error());
    auto writer = (*storage)->create(key, Overwrite::no);
    if (!writer)
        return print_error(writer.error());
    auto result = previous ? git::stream_incremental_bundle(request, *previous, **writer)
                           : git::stream_full_bundle(request, **writer);
    if (!result) {
        (*writer)->abort();
        return print_error(result.error());
    }
    if (result->pack_written) {
        if (auto s = (*writer)->commit(); !s)
            return print_error(s.error());
    } else {
        (*writer)->abort();
    }
    std::cout << json{{"ok", true},
                      {"refs", refs_json(result->refs)},
                      {"head", result->head ? json(*result->head) : json(nullptr)},
                      {"object_format", result->object_format},
                      {"pack_written", result->pack_written},
                      {"unchanged", result->unchanged},
                      {"wants", result->wants},
                      {"prerequisites", result->prerequisites},
                      {"object_count", result->object_count},
                      {"pack_size", result->pack_size},
                      {"bundle_size", result->bundle_size},
                      {"sha256", result->sha256},
                      {"elapsed_ms", elapsed_ms()},
                      {"peak_rss_kib", peak_rss_kib()}}
                     .dump()
              << "\n";
    return 0;
}
