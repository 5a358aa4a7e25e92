// libFuzzer target: the job payload parser (job::parse_job) with a fake
// environment, so token_env and friends resolve without touching the process.
#include "snapshotter/job/job.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    const snapshotter::job::GetEnv env = [](const std::string& name) -> std::optional<std::string> {
        if (name.starts_with("MISSING"))
            return std::nullopt;
        return "fuzz-secret-value";
    };
    auto job = snapshotter::job::parse_job(text, env);
    // Read the result back so neither branch is optimised away.
    if (job)
        return job->repositories.empty() ? 0 : 0;
    return job.error().message.empty() ? 0 : 0;
}
