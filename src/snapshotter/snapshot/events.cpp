#include "snapshotter/snapshot/events.hpp"

namespace snapshotter::snapshot {

void Events::begin(std::string_view, std::string_view, std::size_t) {}
void Events::progress(const Progress&) {}
void Events::end() {}
void Events::job_end(const JobEnd&) {}

Events& no_events() {
    static Events k_none;
    return k_none;
}

} // namespace snapshotter::snapshot
