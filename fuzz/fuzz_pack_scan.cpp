// libFuzzer target: the streaming pack scanner, which reads packs straight
// from a server (untrusted). The input is fed in two parts split at its
// first byte's value, so chunk boundaries are exercised too.
#include "snapshotter/git/pack_scan.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes{reinterpret_cast<const char*>(data), size};
    snapshotter::git::PackScanner scanner(snapshotter::git::PackScanOptions{.max_blob_size = 1024,
                                                                            .cache_bytes = 1U << 20,
                                                                            .max_object_size = 1U << 20},
                                          {});
    const std::size_t split = size == 0 ? 0 : std::min<std::size_t>(size, data[0]);
    if (scanner.feed(bytes.substr(0, split)) && scanner.feed(bytes.substr(split)))
        (void)scanner.finish();
    return 0;
}
