#include "snapshotter/cli/progress.hpp"

#include "snapshotter/cli/metrics.hpp"
#include "snapshotter/cli/table.hpp"
#include "snapshotter/util/log.hpp"
#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace snapshotter::cli {
namespace {

constexpr auto k_redraw_every = std::chrono::milliseconds{200};

// The terminal's width in columns (80 when it cannot be asked).
std::size_t terminal_width() {
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 80;
}

// `text` cut to at most `width` columns (by code point; wide characters may
// make it a little narrower than asked, never wider).
std::string cut_to_width(const std::string& text, std::size_t width) {
    if (display_width(text) <= width)
        return text;
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t len = 1;
        auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        std::string next = out + text.substr(i, len);
        if (display_width(next) + 1 > width)
            break;
        out = std::move(next);
        i += len;
    }
    return out + "…";
}

std::string seconds_text(double seconds) {
    auto s = std::llround(seconds);
    if (s < 60)
        return fmt::format("{}s", s);
    if (s < 3600)
        return fmt::format("{}m{:02}s", s / 60, s % 60);
    return fmt::format("{}h{:02}m", s / 3600, (s / 60) % 60);
}

} // namespace

std::string progress_text(std::string_view action, std::string_view unit, const snapshot::Progress& progress,
                          std::chrono::duration<double> elapsed, std::size_t width) {
    double secs = std::max(0.001, elapsed.count());
    std::string line = fmt::format("{}  {}/{} {}", action, progress.done, progress.total, unit);
    if (progress.in_flight > 0)
        line += fmt::format("  {} running", progress.in_flight);
    if (progress.bytes > 0)
        line +=
            fmt::format("  {}  {}/s", human_bytes(progress.bytes),
                        human_bytes(static_cast<std::uint64_t>(static_cast<double>(progress.bytes) / secs)));
    line += "  " + seconds_text(secs);
    if (progress.done > 0 && progress.done < progress.total)
        line += "  ETA " + seconds_text(secs / static_cast<double>(progress.done) *
                                        static_cast<double>(progress.total - progress.done));
    if (!progress.current.empty())
        line += "  " + printable(progress.current);
    return cut_to_width(line, width == 0 ? 0 : width - 1);
}

TerminalEvents::TerminalEvents(bool show_progress, Metrics metrics, bool stderr_is_terminal)
    : m_show(show_progress),
      m_emf(metrics == Metrics::emf || (metrics == Metrics::automatic && !stderr_is_terminal)) {}

TerminalEvents::~TerminalEvents() {
    stop_drawing();
}

void TerminalEvents::begin(std::string_view action, std::string_view unit, std::size_t total) {
    if (!m_show)
        return;
    stop_drawing();
    std::lock_guard lock(m_mutex);
    m_action = std::string(action);
    m_unit = std::string(unit);
    m_progress = {.done = 0, .total = total, .in_flight = 0, .bytes = 0, .current = {}};
    m_start = std::chrono::steady_clock::now();
    m_running = true;
    m_drawer = std::thread([this] { draw_loop(); });
}

void TerminalEvents::progress(const snapshot::Progress& progress) {
    if (!m_show)
        return;
    std::lock_guard lock(m_mutex);
    m_progress = progress;
}

void TerminalEvents::end() {
    stop_drawing();
}

// The job's metrics as one EMF line, where a log collector reads stderr and
// the log level lets info lines through.
void TerminalEvents::job_end(const snapshot::JobEnd& end) {
    if (!spdlog::default_logger()->should_log(spdlog::level::info))
        return;
    if (m_emf)
        write_stderr_line(emf_document(end).dump());
}

// Redraw the line every k_redraw_every until end(): the elapsed time moves
// even while one long item runs.
void TerminalEvents::draw_loop() {
    std::unique_lock lock(m_mutex);
    while (m_running) {
        auto text = progress_text(m_action, m_unit, m_progress, std::chrono::steady_clock::now() - m_start,
                                  terminal_width());
        lock.unlock();
        set_status_line(text);
        lock.lock();
        m_cv.wait_for(lock, k_redraw_every, [this] { return !m_running; });
    }
}

void TerminalEvents::stop_drawing() {
    {
        std::lock_guard lock(m_mutex);
        m_running = false;
    }
    m_cv.notify_all();
    if (m_drawer.joinable())
        m_drawer.join();
    if (m_show)
        clear_status_line();
}

} // namespace snapshotter::cli
