// s3_probe: drives a storage backend from the command line, independent of
// the snapshotter CLI, for the S3 integration tests.
//
//   s3_probe URL [-o key=value]... COMMAND [ARGS]
//   commands: check | put KEY [--no-overwrite] (stdin) | stream KEY [--no-overwrite] (stdin)
//             | get KEY (stdout) | head KEY | list PREFIX | delete KEY... | delete-prefix PREFIX
//   s3_probe read-url URL (storage::read_url to stdout)
//
// Errors print "<ErrorKind>: <message>" on stderr and exit 2.
#include "snapshotter/job/job.hpp"
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/log.hpp"

#include <cstdio>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>
#include <vector>

using namespace snapshotter;

namespace {

int failed(const Error& e) {
    std::fprintf(stderr, "%s: %s\n", std::string(error_kind_name(e.kind)).c_str(), e.message.c_str());
    return 2;
}

std::string read_stdin() {
    std::string out;
    char buffer[1 << 16];
    ssize_t n;
    while ((n = ::read(0, buffer, sizeof buffer)) > 0)
        out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    init_logging(std::getenv("S3_PROBE_LOG") ? std::getenv("S3_PROBE_LOG") : "info", LogFormat::text);
    if (args.size() == 2 && args[0] == "read-url") {
        auto data = storage::read_url(args[1]);
        if (!data)
            return failed(data.error());
        std::fwrite(data->data(), 1, data->size(), stdout);
        return 0;
    }
    if (args.size() < 2) {
        std::fprintf(stderr, "usage: s3_probe URL [-o key=value]... COMMAND [ARGS]\n");
        return 64;
    }
    // The settings go through the payload's storage section, as the CLI's do:
    // a value that reads as an integer or a boolean is one.
    nlohmann::json settings{{"url", args[0]}};
    std::size_t i = 1;
    while (i + 1 < args.size() && args[i] == "-o") {
        auto eq = args[i + 1].find('=');
        std::string value = eq == std::string::npos ? "" : args[i + 1].substr(eq + 1);
        auto typed = nlohmann::json::parse(value, nullptr, false);
        settings[args[i + 1].substr(0, eq)] =
            typed.is_number_integer() || typed.is_boolean() ? typed : nlohmann::json(value);
        i += 2;
    }
    auto payload =
        job::parse_job(nlohmann::json{{"version", 1}, {"action", "list"}, {"storage", settings}}.dump());
    if (!payload)
        return failed(payload.error());
    const storage::Config& config = payload->storage;
    if (i >= args.size())
        return 64;
    std::string command = args[i++];
    std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
    Overwrite overwrite = Overwrite::yes;
    std::erase_if(rest, [&](const std::string& a) {
        if (a != "--no-overwrite")
            return false;
        overwrite = Overwrite::no;
        return true;
    });

    auto store = storage::open(config);
    if (!store)
        return failed(store.error());
    auto& s = **store;

    if (command == "check") {
        if (auto r = s.check(); !r)
            return failed(r.error());
    } else if (command == "put" && rest.size() == 1) {
        if (auto r = s.put(rest[0], read_stdin(), overwrite); !r)
            return failed(r.error());
    } else if (command == "stream" && rest.size() == 1) {
        auto writer = s.create(rest[0], overwrite);
        if (!writer)
            return failed(writer.error());
        std::vector<char> buffer(std::size_t{1} << 20);
        ssize_t n;
        while ((n = ::read(0, buffer.data(), buffer.size())) > 0)
            if (auto r = (*writer)->write(
                    std::as_bytes(std::span<const char>(buffer.data(), static_cast<std::size_t>(n))));
                !r)
                return failed(r.error());
        if (auto r = (*writer)->commit(); !r)
            return failed(r.error());
    } else if (command == "get" && rest.size() == 1) {
        auto r = s.read(rest[0], [](std::span<const std::byte> chunk) -> Status {
            std::fwrite(chunk.data(), 1, chunk.size(), stdout);
            return {};
        });
        std::fflush(stdout);
        if (!r)
            return failed(r.error());
    } else if (command == "head" && rest.size() == 1) {
        auto r = s.head(rest[0]);
        if (!r)
            return failed(r.error());
        if (!*r) {
            std::puts("absent");
        } else {
            std::printf("%llu %s\n", static_cast<unsigned long long>((*r)->size),
                        (*r)->modified ? format_rfc3339(*(*r)->modified).c_str() : "-");
        }
    } else if (command == "list" && rest.size() <= 1) {
        auto r = s.list(rest.empty() ? "" : rest[0]);
        if (!r)
            return failed(r.error());
        for (const auto& info : *r)
            std::printf("%s %llu\n", info.key.c_str(), static_cast<unsigned long long>(info.size));
    } else if (command == "delete") {
        if (auto r = s.remove(rest); !r)
            return failed(r.error());
    } else if (command == "delete-prefix" && rest.size() == 1) {
        auto listed = s.list(rest[0]);
        if (!listed)
            return failed(listed.error());
        std::vector<std::string> keys;
        for (const auto& info : *listed)
            keys.push_back(info.key);
        if (auto r = s.remove(keys); !r)
            return failed(r.error());
        std::printf("%zu\n", keys.size());
    } else {
        std::fprintf(stderr, "s3_probe: unknown command or wrong arguments: %s\n", command.c_str());
        return 64;
    }
    return 0;
}
