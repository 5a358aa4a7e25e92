// Small ASCII text helpers shared by the HTTP, SigV4 and credential code.
#pragma once

#include <string>
#include <string_view>

namespace snapshotter {

// `text` with ASCII letters lowercased (other bytes unchanged).
std::string ascii_lower(std::string_view text);

// `text` without leading and trailing spaces, tabs, CR and LF.
std::string_view trim_space(std::string_view text);

// The value of hex digit `c` (either case), or -1 when it is not one.
int hex_value(char c);

} // namespace snapshotter
