// How a running action looks to a person: a progress line at the bottom of a
// terminal's stderr, redrawn a few times a second, and the CloudWatch EMF
// metrics lines where a log collector (not a person) reads stderr.
#pragma once

#include "snapshotter/snapshot/events.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace snapshotter::cli {

// When the job's CloudWatch EMF metrics are written to stderr.
enum class Metrics { automatic, emf, off }; // automatic: when stderr is not a terminal

// The progress line's text: "snapshot  12/50 repositories  3 running  1.2 GiB
// 14.0 MiB/s  ETA 32s  org/app" (parts without data left out), cut to `width`
// terminal columns. `elapsed` is the time since the action began.
std::string progress_text(std::string_view action, std::string_view unit, const snapshot::Progress& progress,
                          std::chrono::duration<double> elapsed, std::size_t width);

// snapshot::Events for the command line: draws the progress line only when
// `show_progress` (stderr is a terminal), writes EMF lines as `metrics` says.
class TerminalEvents final : public snapshot::Events {
  public:
    TerminalEvents(bool show_progress, Metrics metrics, bool stderr_is_terminal);
    ~TerminalEvents() override;
    TerminalEvents(const TerminalEvents&) = delete;
    TerminalEvents& operator=(const TerminalEvents&) = delete;

    void begin(std::string_view action, std::string_view unit, std::size_t total) override;
    void progress(const snapshot::Progress& progress) override;
    void end() override;
    void job_end(const snapshot::JobEnd& end) override;

  private:
    void draw_loop();
    void stop_drawing();

    bool m_show;
    bool m_emf;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::string m_action;
    std::string m_unit;
    snapshot::Progress m_progress;
    std::chrono::steady_clock::time_point m_start;
    bool m_running = false;
    std::thread m_drawer;
};

} // namespace snapshotter::cli
