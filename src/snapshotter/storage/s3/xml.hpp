// A small extractor for the flat XML documents S3 and STS answer with. It
// is not a parser: it finds elements by tag name, which is all these
// documents need (no attributes are read, CDATA is not used by S3).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::storage::xml {

// The raw inner text of every <`tag`>...</`tag`> element of `doc`, in order
// (an empty element <`tag`/> gives an empty string).
std::vector<std::string_view> all(std::string_view doc, std::string_view tag);

// The unescaped text of the first <`tag`> element of `doc`, or nullopt.
std::optional<std::string> first(std::string_view doc, std::string_view tag);

// `text` with the five XML entities and numeric character references decoded.
std::string unescape(std::string_view text);

// `text` with &, <, >, " and ' escaped, for building request documents.
std::string escape(std::string_view text);

} // namespace snapshotter::storage::xml
