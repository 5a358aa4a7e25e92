// A stand-in for libFuzzer's main() for compilers without -fsanitize=fuzzer
// support for this code base (GCC; clang 14 cannot compile libstdc++ 12's
// std::expected). It runs every corpus file once, then applies random
// mutations (bit flips, byte edits, inserts, erases, splices, chunk copies)
// to corpus entries until the time or run budget is spent. It has no coverage
// feedback, so it is weaker than libFuzzer; run it under ASan and UBSan.
//
//   fuzz_x [-max_total_time=S] [-runs=N] [-seed=N] [-max_len=N] CORPUS_DIR_OR_FILE...
//
// On a sanitizer report the current input is written to crash-<hash> in the
// working directory (via the sanitizer death callback) before the process dies.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sanitizer/common_interface_defs.h>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::string g_current; // the input being run, saved if the process dies

void save_current_input() {
    const auto name = "crash-" + std::to_string(std::hash<std::string>{}(g_current));
    if (std::FILE* f = std::fopen(name.c_str(), "wb")) {
        std::fwrite(g_current.data(), 1, g_current.size(), f);
        std::fclose(f);
        std::fprintf(stderr, "standalone_driver: input written to %s\n", name.c_str());
    }
}

void run_one(const std::string& input) {
    g_current = input;
    // A copy in a buffer of exactly the input size, so ASan sees any over-read.
    std::vector<std::uint8_t> buffer(input.begin(), input.end());
    LLVMFuzzerTestOneInput(buffer.data(), buffer.size());
}

std::string read_all(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Bytes that often matter to parsers: delimiters, quotes, digits, hex, extremes.
constexpr std::string_view k_interesting = "\0\n\r\t \"\\/{}[]:,.-0123456789abcdefABCDEF@#%\x7f\x80\xff";

std::string mutate(std::string input, const std::vector<std::string>& corpus, std::mt19937_64& rng,
                   std::size_t max_len) {
    auto pick = [&](std::size_t n) { return n == 0 ? std::size_t{0} : std::size_t(rng() % n); };
    const int rounds = 1 + int(pick(8));
    for (int r = 0; r < rounds; ++r) {
        switch (pick(8)) {
        case 0: // flip a bit
            if (!input.empty())
                input[pick(input.size())] ^= char(1u << pick(8));
            break;
        case 1: // set a byte to an interesting or random value
            if (!input.empty())
                input[pick(input.size())] = pick(2) ? k_interesting[pick(k_interesting.size())] : char(rng());
            break;
        case 2: // insert bytes
            input.insert(pick(input.size() + 1),
                         std::string(1 + pick(4), k_interesting[pick(k_interesting.size())]));
            break;
        case 3: // erase a range
            if (!input.empty()) {
                const auto at = pick(input.size());
                input.erase(at, 1 + pick(std::min<std::size_t>(16, input.size() - at)));
            }
            break;
        case 4: // copy a chunk of the input somewhere else in it
            if (!input.empty()) {
                const auto from = pick(input.size());
                const auto chunk = input.substr(from, 1 + pick(32));
                input.insert(pick(input.size() + 1), chunk);
            }
            break;
        case 5: { // splice with another corpus entry
            const auto& other = corpus[pick(corpus.size())];
            if (!other.empty())
                input = input.substr(0, pick(input.size() + 1)) + other.substr(pick(other.size()));
            break;
        }
        case 6: // truncate
            input.resize(pick(input.size() + 1));
            break;
        default: // overwrite with an ASCII digit run (lengths, sizes, counts)
            if (!input.empty()) {
                const auto at = pick(input.size());
                for (std::size_t i = at; i < input.size() && i < at + 1 + pick(8); ++i)
                    input[i] = char(pick(3) == 0 ? 'f' : '0' + pick(10));
            }
            break;
        }
    }
    if (input.size() > max_len)
        input.resize(max_len);
    return input;
}

} // namespace

int main(int argc, char** argv) {
    double max_seconds = 60;
    std::uint64_t max_runs = UINT64_MAX; // seeds included; -runs=0 runs the seeds only
    std::uint64_t seed = std::random_device{}();
    std::size_t max_len = 4096;
    std::vector<std::string> corpus;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg.starts_with("-max_total_time="))
            max_seconds = std::atof(argv[i] + 16);
        else if (arg.starts_with("-runs="))
            max_runs = std::strtoull(argv[i] + 6, nullptr, 10);
        else if (arg.starts_with("-seed="))
            seed = std::strtoull(argv[i] + 6, nullptr, 10);
        else if (arg.starts_with("-max_len="))
            max_len = std::strtoull(argv[i] + 9, nullptr, 10);
        else if (arg.starts_with("-"))
            std::fprintf(stderr, "standalone_driver: ignoring %s\n", argv[i]);
        else if (std::filesystem::is_directory(argv[i])) {
            for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[i]))
                if (entry.is_regular_file())
                    corpus.push_back(read_all(entry.path()));
        } else
            corpus.push_back(read_all(argv[i]));
    }
    __sanitizer_set_death_callback(save_current_input);
    if (corpus.empty())
        corpus.emplace_back();

    // Every seed as is, then mutants until the budget is spent.
    std::uint64_t runs = 0;
    for (const auto& input : corpus) {
        run_one(input);
        ++runs;
    }
    std::mt19937_64 rng(seed);
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::duration<double>(max_seconds);
    while (runs < max_runs) {
        if (runs % 256 == 0 && std::chrono::steady_clock::now() >= deadline)
            break;
        run_one(mutate(corpus[rng() % corpus.size()], corpus, rng, max_len));
        ++runs;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("Done %llu runs in %.0f second(s) (%.0f exec/s), seed %llu, corpus %zu\n",
                static_cast<unsigned long long>(runs), elapsed, elapsed > 0 ? double(runs) / elapsed : 0.0,
                static_cast<unsigned long long>(seed), corpus.size());
    return 0;
}
