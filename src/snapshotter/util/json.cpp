#include "snapshotter/util/json.hpp"

#include <fmt/format.h>

namespace snapshotter {

std::size_t json_nesting_depth(std::string_view text, std::size_t limit) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i; // the escaped character cannot end the string
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit)
                return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

Result<nlohmann::json> parse_json_bounded(std::string_view text, std::size_t max_depth) {
    if (json_nesting_depth(text, max_depth) > max_depth)
        return fail(Error::integrity(fmt::format("nested deeper than {} levels", max_depth)));
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        return fail(Error::integrity(fmt::format("not valid JSON (at byte {})", e.byte)));
    } catch (const nlohmann::json::exception&) {
        // out_of_range: a number too large for a double.
        return fail(Error::integrity("not valid JSON (a number is out of range)"));
    }
}

} // namespace snapshotter
