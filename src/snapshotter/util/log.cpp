#include "snapshotter/util/log.hpp"

#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"
#include "snapshotter/util/time.hpp"

#include <chrono>
#include <fmt/chrono.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

namespace snapshotter {
namespace {

bool g_interactive = false;
std::mutex g_stderr_mutex;
std::string g_status; // the status line on screen (set_status_line), "" when none; under g_stderr_mutex

std::string utc_timestamp(spdlog::log_clock::time_point tp) {
    return format_rfc3339(tp);
}

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n <= 0)
            return;
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Write whole `lines` to stderr, the status line (if one is shown) cleared
// before and drawn again after them, so a log line never lands on it.
void write_lines(std::string_view lines) {
    std::lock_guard lock(g_stderr_mutex);
    if (g_status.empty()) {
        write_all(STDERR_FILENO, lines);
        return;
    }
    write_all(STDERR_FILENO, "\r\x1b[K" + std::string(lines) + g_status);
}

// A sink that redacts, then writes one line per message to stderr.
class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit StderrSink(bool json) : m_json(json) {}

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        std::string text = redact(std::string_view(msg.payload.data(), msg.payload.size()));
        std::string line;
        if (m_json) {
            nlohmann::json j = {{"ts", utc_timestamp(msg.time)},
                                {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                                      spdlog::level::to_string_view(msg.level).size())},
                                {"msg", text}};
            line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        } else {
            auto level = spdlog::level::to_string_view(msg.level);
            // Names read from storage or a server may carry control characters:
            // escaped, as the JSON format does, so no line is forged and no
            // escape sequence reaches the terminal.
            line = fmt::format("{:%H:%M:%S} {:<5} {}\n",
                               std::chrono::time_point_cast<std::chrono::seconds>(msg.time),
                               std::string_view(level.data(), level.size()), escape_control(text));
        }
        write_lines(line);
    }
    void flush_() override {}

  private:
    bool m_json;
};

} // namespace

bool init_logging(std::string_view level, LogFormat format) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        return false;
    bool tty = ::isatty(STDERR_FILENO) == 1;
    bool json = format == LogFormat::json || (format == LogFormat::automatic && !tty);
    g_interactive = tty && !json;
    auto logger = std::make_shared<spdlog::logger>("snapshotter", std::make_shared<StderrSink>(json));
    logger->set_level(lvl);
    spdlog::set_default_logger(logger);
    return true;
}

bool stderr_is_interactive() {
    return g_interactive;
}

void write_stderr_line(std::string_view line) {
    write_lines(std::string(line) + "\n");
}

void set_status_line(std::string_view text) {
    std::lock_guard lock(g_stderr_mutex);
    if (text.empty() && g_status.empty())
        return;
    g_status = std::string(text);
    write_all(STDERR_FILENO, "\r" + g_status + "\x1b[K");
}

void clear_status_line() {
    set_status_line("");
}

} // namespace snapshotter
