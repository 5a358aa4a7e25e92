// libFuzzer target: the bundle header parser, which reads bundles from
// storage (untrusted on restore).
#include "snapshotter/git/bundle_writer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes{reinterpret_cast<const char*>(data), size};
    auto parsed = snapshotter::git::parse_bundle_header(bytes);
    if (!parsed)
        return 0;
    if (parsed->size > size)
        std::abort(); // the header cannot be longer than the input
    return 0;
}
