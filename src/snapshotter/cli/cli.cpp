#include "snapshotter/cli/cli.hpp"

#include "snapshotter/cli/table.hpp"
#include "snapshotter/git/git.hpp"
#include "snapshotter/job/defaults.hpp"
#include "snapshotter/job/job.hpp"
#include "snapshotter/snapshot/actions.hpp"
#include "snapshotter/storage/storage.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/stop.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>

namespace snapshotter::cli {
namespace {

using nlohmann::json;

constexpr int k_exit_ok = 0;
constexpr int k_exit_error = 1;
constexpr int k_exit_partial = 2;
constexpr int k_exit_interrupted = 3;

struct Flags {
    std::string job_file;
    std::string output = "json"; // json | table
    bool dry_run = false;
    bool version = false;
    std::string log_level = "info";
    std::string log_format = "auto";
};

// The one line stdout ever carries; "ok" comes first, then "error" or "result".
void print_line(const nlohmann::ordered_json& j) {
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

bool is_table(const Flags& flags) {
    return flags.output == "table";
}

// Text for people on stdout, ending in a newline.
void print_text(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

// The exit code of `outcome`.
int exit_code_of(const snapshot::Outcome& outcome) {
    if (outcome.error)
        return outcome.error->kind == ErrorKind::Interrupted ? k_exit_interrupted : k_exit_error;
    return outcome.partial ? k_exit_partial : k_exit_ok;
}

// The message of a partial failure: how many repositories failed, and which
// shard reports are missing.
std::string partial_message(const json& result) {
    const auto& summary = result.at("summary");
    std::string message = fmt::format("{} of {} repositories failed", summary.at("failed").get<int>(),
                                      summary.at("total").get<int>());
    if (int sources = summary.value("sources_failed", 0); sources > 0)
        message += fmt::format("; {} source{} failed", sources, sources == 1 ? "" : "s");
    if (auto it = result.find("missing_shards"); it != result.end() && !it->empty())
        message += fmt::format("; reports of shards {} are missing", it->dump());
    return message;
}

// One JSON line: {"ok":true,"result":...}, or the error (with the result when there is one).
void print_json(const snapshot::Outcome& outcome) {
    if (outcome.error) {
        nlohmann::ordered_json j = {{"ok", false},
                                    {"error", error_kind_name(outcome.error->kind)},
                                    {"message", redact(outcome.error->message)}};
        if (!outcome.result.is_null())
            j["result"] = outcome.result;
        print_line(j);
    } else if (outcome.partial) {
        print_line({{"ok", false},
                    {"error", "PartialFailure"},
                    {"message", partial_message(outcome.result)},
                    {"result", outcome.result}});
    } else {
        print_line({{"ok", true}, {"result", outcome.result}});
    }
}

// --output table: the list table on stdout; an error or partial failure as
// one readable line on stderr.
void print_table(const snapshot::Outcome& outcome) {
    if (outcome.error) {
        std::cerr << fmt::format("snapshotter: {}: {}\n", error_kind_name(outcome.error->kind),
                                 redact(outcome.error->message));
        return;
    }
    if (outcome.partial)
        std::cerr << fmt::format("snapshotter: PartialFailure: {}\n",
                                 redact(partial_message(outcome.result)));
    if (outcome.result.value("action", "") == "list")
        print_text(render_list_table(outcome.result));
}

// Print `outcome` the way --output asks; returns the exit code.
int report(const Flags& flags, const snapshot::Outcome& outcome) {
    if (is_table(flags))
        print_table(outcome);
    else
        print_json(outcome);
    return exit_code_of(outcome);
}

snapshot::Outcome failed(Error error) {
    return {nullptr, std::move(error), false};
}

// Read a payload from a local path or an s3:// URL.
Result<std::string> read_payload_source(const std::string& source, std::string_view what) {
    auto text = source.starts_with("s3://") ? storage::read_url(source, job::defaults::k_max_payload_bytes)
                                            : read_file(source, job::defaults::k_max_payload_bytes);
    if (!text)
        return fail(Error::payload(fmt::format("{} {}: {}", what, redact_url(source), text.error().message)));
    return text;
}

// The payload text: --job-file wins, then SNAPSHOTTER_JOB_JSON, then
// SNAPSHOTTER_JOB_URL (a path or s3:// URL, for payloads too large for an
// environment variable).
Result<std::string> load_payload(const Flags& flags) {
    auto env_json = job::process_env("SNAPSHOTTER_JOB_JSON");
    if (!flags.job_file.empty()) {
        if (env_json)
            spdlog::info("both --job-file and SNAPSHOTTER_JOB_JSON are set; using --job-file");
        return read_payload_source(flags.job_file, "--job-file");
    }
    if (env_json && !env_json->empty())
        return *env_json;
    if (auto url = job::process_env("SNAPSHOTTER_JOB_URL"); url && !url->empty())
        return read_payload_source(*url, "SNAPSHOTTER_JOB_URL");
    return fail(Error::payload(
        "no job payload: pass --job-file PATH or set SNAPSHOTTER_JOB_JSON or SNAPSHOTTER_JOB_URL"));
}

snapshot::Outcome run_job(const Flags& flags) {
    // 1. Read and validate the payload: nothing is touched before this passes.
    auto text = load_payload(flags);
    if (!text)
        return failed(text.error());
    auto job = job::parse_job(*text);
    if (!job)
        return failed(job.error());
    if (is_table(flags) && job->action != job::Action::list)
        return failed({ErrorKind::Usage,
                       fmt::format("--output table is only for the list action; this payload's action is {} "
                                   "(use --output json)",
                                   job::action_name(job->action))});
    spdlog::info("job {}: {}{}", job->job_id, job::action_name(job->action),
                 flags.dry_run ? " (dry run)" : "");

    // 2. Open storage and prepare the isolated git environment.
    auto storage = storage::open({job->storage.url, job->storage.options});
    if (!storage)
        return failed(storage.error());
    // A killed run's scratch directories (their credential files included)
    // go before this run makes its own.
    if (auto n = sweep_abandoned_temp_dirs(); n > 0)
        spdlog::info("removed {} temporary director{} left by a killed run", n, n == 1 ? "y" : "ies");
    auto git = git::Git::create();
    if (!git)
        return failed(git.error());

    // 3. Run the action; SIGTERM/SIGINT now mean "finish what runs, then stop".
    install_stop_handlers();
    snapshot::Context ctx{*job, **storage, *git, flags.dry_run};
    switch (job->action) {
    case job::Action::snapshot:
        return snapshot::run_snapshot(ctx);
    case job::Action::restore:
        return snapshot::run_restore(ctx);
    case job::Action::verify:
        return snapshot::run_verify(ctx);
    case job::Action::list:
        return snapshot::run_list(ctx);
    case job::Action::merge_reports:
        return snapshot::run_merge_reports(ctx);
    case job::Action::prune:
        return snapshot::run_prune(ctx);
    case job::Action::gc:
        return snapshot::run_gc(ctx);
    }
    return failed(Error::internal("unknown action"));
}

int run_parsed(int argc, char** argv, Flags& flags) {
    CLI::App app{"snapshotter: point-in-time, restorable snapshots of git repositories.\n"
                 "The job is a JSON payload (docs/job-payload.md); stdout carries one line of JSON."};
    app.add_option("--job-file", flags.job_file,
                   "Read the job payload from this file or s3:// URL (wins over SNAPSHOTTER_JOB_JSON)");
    app.add_flag("--dry-run", flags.dry_run, "Validate, check storage and list remotes; write nothing");
    app.add_flag("--version", flags.version, "Print the version as JSON and exit");
    app.add_option("--output", flags.output,
                   "json (one line on stdout, the default) or table (list only: a table for people)")
        ->check(CLI::IsMember({"json", "table"}));
    app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error or off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_option("--log-format", flags.log_format,
                   "auto (text on a terminal, JSON lines otherwise), json or text")
        ->check(CLI::IsMember({"auto", "json", "text"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        if (is_table(flags)) {
            print_text(app.help());
            return k_exit_ok;
        }
        std::cerr << app.help();
        print_line({{"ok", true}, {"result", {{"help", app.help()}}}});
        return k_exit_ok;
    } catch (const CLI::ParseError& e) {
        return report(flags, failed({ErrorKind::Usage, e.what()}));
    }
    LogFormat format = flags.log_format == "json"   ? LogFormat::json
                       : flags.log_format == "text" ? LogFormat::text
                                                    : LogFormat::automatic;
    init_logging(flags.log_level, format);

    if (flags.version) {
        json result = {{"version", SNAPSHOTTER_VERSION}};
        if (auto git = git::Git::create())
            result["git"] = git->version();
        if (is_table(flags))
            print_text(
                fmt::format("snapshotter {}{}\n", SNAPSHOTTER_VERSION,
                            result.contains("git") ? ", git " + result["git"].get<std::string>() : ""));
        else
            print_line({{"ok", true}, {"result", result}});
        return k_exit_ok;
    }
    return report(flags, run_job(flags));
}

} // namespace

int run(int argc, char** argv) {
    // A closed pipe is an error value, not a signal that kills us silently.
    std::signal(SIGPIPE, SIG_IGN);
    // Outside the try, so that even an unexpected failure is reported the way --output asked.
    Flags flags;
    try {
        return run_parsed(argc, argv, flags);
    } catch (const std::exception& e) {
        return report(flags, failed(Error::internal(fmt::format("unexpected: {}", e.what()))));
    } catch (...) {
        return report(flags, failed(Error::internal("unexpected failure")));
    }
}

} // namespace snapshotter::cli
