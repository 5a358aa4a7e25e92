#include "snapshotter/cli/cli.hpp"

#include "snapshotter/cli/payload.hpp"
#include "snapshotter/cli/progress.hpp"
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
#include "snapshotter/util/text.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sstream>
#include <unistd.h>

namespace snapshotter::cli {
namespace {

using nlohmann::json;

constexpr int k_exit_ok = 0;
constexpr int k_exit_error = 1;
constexpr int k_exit_partial = 2;
constexpr int k_exit_interrupted = 3;

struct Flags {
    std::string job_file;
    std::string output = "auto"; // json | table | auto (table when stdout is a terminal)
    bool dry_run = false;
    bool version = false;
    bool print_payload = false;
    std::string log_level = "info";
    std::string log_format = "auto";
    std::string metrics = "auto"; // auto | emf | off
    std::string action;           // the subcommand ("" when none: the payload says)
    PayloadFlags payload;         // what the subcommand's flags build
};

// The one line stdout ever carries; "ok" comes first, then "error" or "result".
void print_line(const nlohmann::ordered_json& j) {
    std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

bool is_table(const Flags& flags) {
    return flags.output == "table" || (flags.output == "auto" && ::isatty(STDOUT_FILENO) == 1);
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

// --output table: the result for people on stdout (also the result of a
// failed action, when it has one: what verify found, say); an error or
// partial failure as one readable line on stderr after it.
void print_table(const snapshot::Outcome& outcome) {
    if (outcome.result.is_object() && outcome.result.contains("action"))
        print_text(redact(render_result(outcome.result)));
    if (outcome.error) {
        std::cerr << fmt::format("snapshotter: {}: {}\n", error_kind_name(outcome.error->kind),
                                 redact(outcome.error->message));
        return;
    }
    if (outcome.partial)
        std::cerr << fmt::format("snapshotter: PartialFailure: {}\n",
                                 redact(partial_message(outcome.result)));
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
    if (!text) {
        // Name the source once: the storage layer's message may name it already.
        const auto& message = text.error().message;
        if (message.find(redact_url(source)) != std::string::npos)
            return fail(Error::payload(fmt::format("{}: {}", what, message)));
        return fail(Error::payload(fmt::format("{} {}: {}", what, redact_url(source), message)));
    }
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

// The payload of a subcommand: from its flags, or (with --job-file, or with
// SNAPSHOTTER_JOB_JSON/URL and no --storage) the whole job as without one.
Result<std::string> subcommand_payload(const Flags& flags) {
    bool from_source =
        !flags.job_file.empty() ||
        (flags.payload.storage.empty() && (job::process_env("SNAPSHOTTER_JOB_JSON").value_or("") != "" ||
                                           job::process_env("SNAPSHOTTER_JOB_URL").value_or("") != ""));
    if (!from_source) {
        auto built = build_payload(flags.action, flags.payload);
        if (!built)
            return fail(built.error());
        return built->dump();
    }
    if (!flags.payload.storage.empty())
        return fail(Error{ErrorKind::Usage,
                          "--job-file gives the whole job: leave out --storage and the other "
                          "payload flags, or leave out --job-file"});
    return load_payload(flags);
}

// The payload text of this run, from the subcommand's flags or as today.
Result<std::string> payload_text(const Flags& flags) {
    return flags.action.empty() ? load_payload(flags) : subcommand_payload(flags);
}

snapshot::Outcome run_job(const Flags& flags, snapshot::Events& events) {
    // 1. Read and validate the payload: nothing is touched before this passes.
    auto text = payload_text(flags);
    if (!text)
        return failed(text.error());
    auto job = job::parse_job(*text);
    if (!job)
        return failed(job.error());
    if (!flags.action.empty()) {
        std::string wanted = flags.action == "merge-reports" ? "merge_reports" : flags.action;
        if (job::action_name(job->action) != wanted)
            return failed({ErrorKind::Usage, fmt::format("the payload's action is \"{}\", not \"{}\"",
                                                         job::action_name(job->action), wanted)});
    }
    spdlog::info("job {}: {}{}", job->job_id, job::action_name(job->action),
                 flags.dry_run ? " (dry run)" : "");

    // 2. Open storage and prepare the isolated git environment.
    auto storage = storage::open(job->storage);
    if (!storage)
        return failed(storage.error());
    // Reading a file storage that does not exist is a typo, not an empty
    // store (file storage describes itself as file:// and its absolute path).
    if (auto url = (*storage)->describe();
        (job->action == job::Action::list || job->action == job::Action::verify ||
         job->action == job::Action::prune) &&
        url.starts_with("file://") && !std::filesystem::exists(url.substr(7)))
        return failed(Error::not_found(fmt::format("storage {} does not exist", url)));
    // A killed run's scratch directories (their credential files included)
    // go before this run makes its own.
    if (auto n = sweep_abandoned_temp_dirs(); n > 0)
        spdlog::info("removed {} temporary director{} left by a killed run", n, n == 1 ? "y" : "ies");
    auto git = git::Git::create();
    if (!git)
        return failed(git.error());

    // 3. Run the action; SIGTERM/SIGINT now mean "finish what runs, then stop".
    install_stop_handlers();
    snapshot::Context ctx{*job, **storage, *git, flags.dry_run, events};
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

constexpr const char* k_main_footer = R"(Examples:
  snapshotter snapshot --storage /backups --repo https://github.com/org/app.git
  snapshotter list --storage s3://bucket/git --storage-opt region=eu-west-1
  snapshotter restore --storage /backups --repo org/app --target /tmp/app.git
  snapshotter prune --storage /backups --keep-daily 7 --keep-weekly 4 --dry-run
  snapshotter --job-file job.json          (the whole job as JSON; or SNAPSHOTTER_JOB_JSON)
  snapshotter help prune                   (an action's flags, with examples)

On a terminal the result is a table; otherwise stdout carries one line of JSON
(--output json|table|auto). Exit codes: 0 ok, 1 error, 2 partial failure, 3 interrupted.
Any command with --print-payload prints the JSON job it runs (docs/job-payload.md in the
source describes every field).)";

// One subcommand: its summary and the examples of `snapshotter help ACTION`.
struct ActionHelp {
    const char* name;
    const char* summary;
    const char* examples;
};

constexpr ActionHelp k_action_help[] = {
    {"snapshot", "Snapshot repositories into storage (a rerun with the same --job-id resumes it)",
     R"(Examples:
  snapshotter snapshot --storage /backups --repo https://github.com/org/app.git --repo org/lib=https://github.com/org/lib.git
  snapshotter snapshot --storage s3://bucket/git --repo git@github.com:org/app.git --ssh-key-env DEPLOY_KEY
  snapshotter snapshot --storage /backups --repo https://git.example/org/app.git --token-env GIT_TOKEN --print-payload > job.json
  snapshotter snapshot --storage /backups --source github:org/acme --token-env GITHUB_TOKEN
  snapshotter snapshot --storage /backups --source gitlab:group/platform --api-url https://gitlab.example.com/api/v4 --token-env GITLAB_TOKEN --ssh-key-env DEPLOY_KEY)"},
    {"restore", "Rebuild snapshots as new bare repositories, or push one to an empty remote",
     R"(Examples:
  snapshotter restore --storage /backups --repo org/app --target /tmp/app.git
  snapshotter restore --storage /backups --repo org/app --snapshot 20261124T0 --target /tmp/app.git --preserved
  snapshotter restore --storage /backups --repo org/app --repo org/lib --as-of 2026-11-24T00:00:00Z --target-dir /restore
  snapshotter restore --storage s3://bucket/git --all --target-dir /restore      (each to /restore/<name>.git)
  snapshotter restore --storage /backups --repo org/app --push-to https://git.example/org/app.git --token-env NEW_TOKEN)"},
    {"verify", "Check stored snapshots: checksums, bundle readability, optionally a restore drill",
     R"(Examples:
  snapshotter verify --storage /backups
  snapshotter verify --storage s3://bucket/git --repo org/app --snapshot all --drill)"},
    {"list", "List snapshots, newest first",
     R"(Examples:
  snapshotter list --storage /backups
  snapshotter list --storage s3://bucket/git --storage-opt region=eu-west-1 --repo org/app --output json)"},
    {"prune", "Delete snapshots the retention policy does not keep (--dry-run shows the plan)",
     R"(Examples:
  snapshotter prune --storage /backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  snapshotter prune --storage s3://bucket/git --repo org/app --keep-last 10 --pin 20261124T000000Z-abcdefghijk)"},
    {"gc", "Remove leftovers of interrupted runs (idle at least --min-age seconds)",
     R"(Examples:
  snapshotter gc --storage /backups --dry-run
  snapshotter gc --storage s3://bucket/git --min-age 172800)"},
    {"merge-reports", "Merge the shard reports of a sharded job into jobs/<job-id>.json",
     R"(Examples:
  snapshotter merge-reports --storage s3://bucket/git --job-id nightly-2026-11-24)"},
};

// The flags every action's payload takes.
void add_storage_flags(CLI::App* sub, PayloadFlags& p) {
    sub->add_option("--storage", p.storage,
                    "Where snapshots live: a directory, file:///dir or s3://bucket/prefix");
    sub->add_option(
           "--storage-opt", p.storage_options,
           "A storage setting as KEY=VALUE (region=eu-west-1, endpoint=..., addressing=path); repeatable")
        ->allow_extra_args(false);
}

template <class T>
void add_optional(CLI::App* sub, const std::string& name, std::optional<T>& target, const std::string& help) {
    sub->add_option_function<T>(
        name, [&target](const T& value) { target = value; }, help);
}

void add_repos(CLI::App* sub, PayloadFlags& p, const std::string& help) {
    sub->add_option("--repo", p.repos, help)->allow_extra_args(false);
}

// The flags of `action`, on its subcommand.
void add_action_flags(CLI::App* sub, const std::string& action, PayloadFlags& p) {
    add_storage_flags(sub, p);
    if (action == "snapshot") {
        add_repos(sub, p, "A repository URL, or NAME=URL to name it; repeatable");
        sub->add_option("--source", p.sources,
                        "Repositories to discover on a forge, as TYPE:SCOPE/NAME (github:org/acme, "
                        "gitlab:group/acme/platform, gitea:user/bob, bitbucket:workspace/team1); repeatable")
            ->allow_extra_args(false);
        add_optional(sub, "--api-url", p.api_url,
                     "The API of every --source (GitHub Enterprise, self-managed GitLab, Gitea/Forgejo)");
        add_optional(sub, "--job-id", p.job_id,
                     "Name this run; a rerun with the same id resumes it (skips what it already committed)");
        sub->add_option("--ref", p.refs,
                        "A ref pattern to snapshot (default refs/heads/* and refs/tags/*); repeatable")
            ->allow_extra_args(false);
        add_optional(sub, "--token-env", p.token_env,
                     "Environment variable holding the https token (for a --source, the API's too)");
        add_optional(sub, "--ssh-key-env", p.ssh_key_env,
                     "Environment variable holding the ssh private key (a --source then clones over ssh)");
        add_optional(sub, "--username", p.username, "User name sent with the token");
        add_optional(sub, "--engine", p.engine, "auto, stream or cli");
        add_optional(sub, "--cache-dir", p.cache_dir, "Where the cli engine keeps mirrors");
        add_optional(sub, "--concurrency", p.concurrency, "Repositories worked on at once");
        add_optional(sub, "--timeout", p.timeout_s, "Seconds each repository may take");
        add_optional(sub, "--deadline", p.deadline_s, "Seconds the whole job may take");
        add_optional(sub, "--retries", p.retries, "Extra attempts after a transient failure");
        sub->add_flag("--allow-http", p.allow_http, "Permit http:// repository URLs");
    } else if (action == "restore") {
        add_repos(sub, p, "A repository name to restore (as list shows it); repeatable");
        sub->add_flag("--all", p.all, "Restore every repository in storage (with --target-dir)");
        add_optional(sub, "--snapshot", p.snapshot,
                     "latest (the default), a snapshot id or its unique beginning");
        add_optional(
            sub, "--as-of", p.as_of,
            "The newest snapshot at or before this RFC 3339 time (2026-11-24T00:00:00Z), per repository");
        add_optional(sub, "--target", p.target, "The new bare repository (absolute path, absent or empty)");
        add_optional(sub, "--target-dir", p.target_dir,
                     "Restore each repository to DIR/<name>.git (absolute path; each absent or empty)");
        sub->add_flag("--preserved", p.preserved, "Also recreate rewritten and deleted ref tips");
        add_optional(sub, "--push-to", p.push_to,
                     "Push the restored refs to this empty remote (one repository)");
        sub->add_flag(
            "--force", p.force,
            "With --push-to: make a non-empty remote's refs equal the snapshot's (deletes the others)");
        add_optional(sub, "--token-env", p.token_env,
                     "With --push-to: environment variable holding the token");
        add_optional(sub, "--ssh-key-env", p.ssh_key_env,
                     "With --push-to: environment variable holding the ssh private key");
        add_optional(sub, "--username", p.username, "With --push-to: user name sent with the token");
        sub->add_flag("--allow-http", p.allow_http, "Permit an http:// --push-to URL");
    } else if (action == "verify") {
        add_repos(sub, p, "A repository name to check (default: all); repeatable");
        add_optional(sub, "--snapshot", p.snapshot, "latest (the default), all, or a snapshot id");
        sub->add_flag("--drill", p.drill, "Also restore each snapshot and run git fsck");
    } else if (action == "list") {
        add_repos(sub, p, "Only this repository");
    } else if (action == "prune") {
        add_repos(sub, p, "A repository name to prune (default: all); repeatable");
        add_optional(sub, "--keep-last", p.keep_last, "Keep the N newest snapshots");
        add_optional(sub, "--keep-hourly", p.keep_hourly, "Keep the newest snapshot of each of N hours");
        add_optional(sub, "--keep-daily", p.keep_daily, "... of each of N days (UTC)");
        add_optional(sub, "--keep-weekly", p.keep_weekly, "... of each of N ISO weeks");
        add_optional(sub, "--keep-monthly", p.keep_monthly, "... of each of N months");
        add_optional(sub, "--keep-yearly", p.keep_yearly, "... of each of N years");
        add_optional(sub, "--keep-within", p.keep_within,
                     "Keep everything within this span of the newest (30d, 1y2m)");
        sub->add_option("--pin", p.pinned, "Keep this snapshot id whatever the rules say; repeatable")
            ->allow_extra_args(false);
        sub->add_flag("--rebase", p.rebase, "Write a new full bundle where a kept chain needs a dropped one");
    } else if (action == "gc") {
        add_optional(sub, "--min-age", p.min_age_s,
                     "Only leftovers idle at least this many seconds (default 86400)");
        sub->add_flag("--allow-short-age", p.allow_short_age, "Permit --min-age below 3600");
    } else if (action == "merge-reports") {
        add_optional(sub, "--job-id", p.job_id, "The sharded job whose reports to merge");
    }
}

// Every long option name `app` and its subcommands know ("--storage").
std::vector<std::string> option_names(const CLI::App& app) {
    std::vector<std::string> names;
    for (const auto* opt : app.get_options())
        for (const auto& n : opt->get_lnames())
            names.push_back("--" + n);
    for (const auto* sub : app.get_subcommands({}))
        for (const auto& n : option_names(*sub))
            if (std::find(names.begin(), names.end(), n) == names.end())
                names.push_back(n);
    return names;
}

// CLI11's `message` about unexpected arguments, with the nearest known flag
// or action for the first one that has one near: "... not expected: lsit
// (did you mean \"list\"?)". Without a suggestion the message is CLI11's, as
// it always was.
std::string with_suggestion(const CLI::App& app, const std::string& message) {
    auto colon = message.find(": ");
    if (colon == std::string::npos)
        return message;
    std::vector<std::string> words;
    std::istringstream in(message.substr(colon + 2));
    for (std::string w; in >> w;)
        words.insert(words.begin(), w); // CLI11 lists them last first
    std::vector<std::string> actions = action_names();
    actions.push_back("help");
    for (const auto& word : words) {
        bool flag = word.starts_with("-");
        auto name = flag ? word.substr(0, word.find('=')) : word;
        if (auto near = nearest_name(name, flag ? option_names(app) : actions))
            return fmt::format("{} ({}did you mean \"{}\"?)", message,
                               words.size() > 1 ? fmt::format("{}: ", name) : "", *near);
    }
    return message;
}

// `snapshotter help [ACTION]`: the help text, or a usage error.
snapshot::Outcome help_for(const CLI::App& app, const std::string& action) {
    if (action.empty()) {
        // Not app.help(): that shows the selected subcommand's, this one's.
        print_text(app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal));
        return {nlohmann::json::object(), std::nullopt, false};
    }
    for (const auto* sub : app.get_subcommands({}))
        if (sub->get_name() == action && action != "help") {
            print_text(sub->help("snapshotter"));
            return {nlohmann::json::object(), std::nullopt, false};
        }
    auto near = nearest_name(action, action_names());
    return failed({ErrorKind::Usage, fmt::format("unknown action \"{}\"{}", action,
                                                 near ? fmt::format(" (did you mean \"{}\"?)", *near) : "")});
}

Metrics metrics_of(const std::string& name) {
    return name == "emf" ? Metrics::emf : name == "off" ? Metrics::off : Metrics::automatic;
}

int run_parsed(int argc, char** argv, Flags& flags) {
    CLI::App app{"snapshotter: point-in-time, restorable snapshots of git repositories.", "snapshotter"};
    app.footer(k_main_footer);
    app.require_subcommand(0, 1);
    app.add_option("--job-file", flags.job_file,
                   "Read the job payload from this file or s3:// URL (wins over SNAPSHOTTER_JOB_JSON)");
    app.add_flag("--dry-run", flags.dry_run, "Validate, check storage and list remotes; write nothing");
    app.add_flag("--version", flags.version, "Print the version and exit");
    app.add_flag("--print-payload", flags.print_payload,
                 "Print the job payload the flags build (a job file) and exit without running it");
    app.add_option("--output", flags.output,
                   "auto (the default: a table on a terminal, one JSON line otherwise), json or table")
        ->check(CLI::IsMember({"auto", "json", "table"}));
    app.add_option("--log-level", flags.log_level, "trace, debug, info, warning (or warn), error or off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}));
    app.add_option("--log-format", flags.log_format,
                   "auto (text on a terminal, JSON lines otherwise), json or text")
        ->check(CLI::IsMember({"auto", "json", "text"}));
    app.add_option("--metrics", flags.metrics,
                   "CloudWatch EMF metrics lines on stderr: auto (when stderr is not a terminal), emf or off")
        ->check(CLI::IsMember({"auto", "emf", "off"}));
    for (const auto& help : k_action_help) {
        auto* sub = app.add_subcommand(help.name, help.summary);
        sub->footer(help.examples);
        sub->fallthrough();
        add_action_flags(sub, help.name, flags.payload);
    }
    app.get_subcommand("merge-reports")->alias("merge_reports");
    std::string help_topic;
    auto* help_sub = app.add_subcommand("help", "Show the help of an action, with examples");
    help_sub->add_option("action", help_topic, "The action");
    help_sub->fallthrough();
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        print_text(app.help());
        return k_exit_ok;
    } catch (const CLI::ExtrasError& e) {
        return report(flags, failed({ErrorKind::Usage, with_suggestion(app, e.what())}));
    } catch (const CLI::ParseError& e) {
        return report(flags, failed({ErrorKind::Usage, e.what()}));
    }
    if (auto selected = app.get_subcommands(); !selected.empty())
        flags.action = selected.front()->get_name();
    // A person who types just `snapshotter` gets the help, as with gh or git;
    // a program (stdout not a terminal) still gets the PayloadError line.
    if (argc <= 1 && is_table(flags) && job::process_env("SNAPSHOTTER_JOB_JSON").value_or("").empty() &&
        job::process_env("SNAPSHOTTER_JOB_URL").value_or("").empty()) {
        print_text(app.help());
        return k_exit_ok;
    }
    LogFormat format = flags.log_format == "json"   ? LogFormat::json
                       : flags.log_format == "text" ? LogFormat::text
                                                    : LogFormat::automatic;
    init_logging(flags.log_level, format);

    if (flags.action == "help") {
        auto outcome = help_for(app, help_topic);
        return outcome.error ? report(flags, outcome) : k_exit_ok;
    }
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
    if (flags.print_payload) {
        auto text = payload_text(flags);
        if (!text)
            return report(flags, failed(text.error()));
        nlohmann::ordered_json payload;
        try {
            payload = nlohmann::ordered_json::parse(*text);
        } catch (const json::exception&) {
            return report(flags, failed(Error::payload("(payload): payload is not valid JSON")));
        }
        print_text(payload.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
        return k_exit_ok;
    }
    TerminalEvents events(stderr_is_interactive(), metrics_of(flags.metrics), ::isatty(STDERR_FILENO) == 1);
    return report(flags, run_job(flags, events));
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
