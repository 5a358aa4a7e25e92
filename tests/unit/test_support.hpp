// Helpers shared by several unit test files.
#pragma once

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

namespace snapshotter::test {

// While alive, the local time zone is five hours west of UTC, so that any
// use of local time where UTC is meant shows.
class NonUtcZone {
  public:
    NonUtcZone() {
        if (const char* old = std::getenv("TZ"))
            m_old = old;
        ::setenv("TZ", "XYZ+05", 1);
        ::tzset();
    }
    ~NonUtcZone() {
        if (m_old)
            ::setenv("TZ", m_old->c_str(), 1);
        else
            ::unsetenv("TZ");
        ::tzset();
    }
    NonUtcZone(const NonUtcZone&) = delete;
    NonUtcZone& operator=(const NonUtcZone&) = delete;

  private:
    std::optional<std::string> m_old;
};

} // namespace snapshotter::test
