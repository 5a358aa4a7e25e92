// The closed sets of strings the payload holds, as enums: each has one table
// of its payload spellings, and to_string()/parse_*() read it both ways, so
// code compares enums and JSON prints the exact strings of the payload.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace snapshotter::job {

// options.engine: how a repository is fetched.
enum class Engine { automatic, stream, cli };
// options.verify: how a streamed pack is checked before commit.
enum class VerifyMode { pack, index };
// options.ssh.host_key_policy: how ssh treats a host key it does not know.
enum class HostKeyPolicy { strict, accept_new };
// sources[].type: the forge a source lists.
enum class ForgeType { github, gitlab, gitea, bitbucket };
// The scope key of a source: what on the forge it lists.
enum class SourceScope { org, user, team, group, workspace };
// sources[].visibility: which repositories a source keeps.
enum class Visibility { all, public_only, private_only };
// sources[].transport: how git clones a discovered repository.
enum class CloneTransport { https, ssh };
// repositories[].lfs: whether a snapshot also stores Git LFS content (docs/lfs.md).
// The payload writes `true`, `false` (JSON booleans) or the string "auto".
enum class LfsMode { automatic, on, off };

// One value of an enum and its payload spelling.
template <typename E> using Spelling = std::pair<E, std::string_view>;

// The payload spellings of each enum, in the order messages list them.
inline constexpr Spelling<Engine> k_engines[] = {
    {Engine::automatic, "auto"}, {Engine::stream, "stream"}, {Engine::cli, "cli"}};
inline constexpr Spelling<VerifyMode> k_verify_modes[] = {{VerifyMode::pack, "pack"},
                                                          {VerifyMode::index, "index"}};
inline constexpr Spelling<HostKeyPolicy> k_host_key_policies[] = {{HostKeyPolicy::strict, "strict"},
                                                                  {HostKeyPolicy::accept_new, "accept_new"}};
inline constexpr Spelling<ForgeType> k_forge_types[] = {{ForgeType::github, "github"},
                                                        {ForgeType::gitlab, "gitlab"},
                                                        {ForgeType::gitea, "gitea"},
                                                        {ForgeType::bitbucket, "bitbucket"}};
inline constexpr Spelling<SourceScope> k_source_scopes[] = {{SourceScope::org, "org"},
                                                            {SourceScope::user, "user"},
                                                            {SourceScope::team, "team"},
                                                            {SourceScope::group, "group"},
                                                            {SourceScope::workspace, "workspace"}};
inline constexpr Spelling<Visibility> k_visibilities[] = {
    {Visibility::all, "all"}, {Visibility::public_only, "public"}, {Visibility::private_only, "private"}};
inline constexpr Spelling<CloneTransport> k_clone_transports[] = {{CloneTransport::https, "https"},
                                                                  {CloneTransport::ssh, "ssh"}};
inline constexpr Spelling<LfsMode> k_lfs_modes[] = {
    {LfsMode::automatic, "auto"}, {LfsMode::on, "true"}, {LfsMode::off, "false"}};

// The spelling of `value` in `table`.
template <typename E> constexpr std::string_view spelling_of(std::span<const Spelling<E>> table, E value) {
    for (const auto& [candidate, text] : table)
        if (candidate == value)
            return text;
    return "?";
}

// The value spelt `text` in `table`, or nullopt.
template <typename E>
constexpr std::optional<E> value_of(std::span<const Spelling<E>> table, std::string_view text) {
    for (const auto& [candidate, spelling] : table)
        if (spelling == text)
            return candidate;
    return std::nullopt;
}

// The payload spelling of each value.
constexpr std::string_view to_string(Engine value) {
    return spelling_of<Engine>(k_engines, value);
}
constexpr std::string_view to_string(VerifyMode value) {
    return spelling_of<VerifyMode>(k_verify_modes, value);
}
constexpr std::string_view to_string(HostKeyPolicy value) {
    return spelling_of<HostKeyPolicy>(k_host_key_policies, value);
}
constexpr std::string_view to_string(ForgeType value) {
    return spelling_of<ForgeType>(k_forge_types, value);
}
constexpr std::string_view to_string(SourceScope value) {
    return spelling_of<SourceScope>(k_source_scopes, value);
}
constexpr std::string_view to_string(Visibility value) {
    return spelling_of<Visibility>(k_visibilities, value);
}
constexpr std::string_view to_string(CloneTransport value) {
    return spelling_of<CloneTransport>(k_clone_transports, value);
}
constexpr std::string_view to_string(LfsMode value) {
    return spelling_of<LfsMode>(k_lfs_modes, value);
}

// The value a payload string spells, or nullopt when it is none of them.
constexpr std::optional<Engine> parse_engine(std::string_view text) {
    return value_of<Engine>(k_engines, text);
}
constexpr std::optional<VerifyMode> parse_verify_mode(std::string_view text) {
    return value_of<VerifyMode>(k_verify_modes, text);
}
constexpr std::optional<HostKeyPolicy> parse_host_key_policy(std::string_view text) {
    return value_of<HostKeyPolicy>(k_host_key_policies, text);
}
constexpr std::optional<ForgeType> parse_forge_type(std::string_view text) {
    return value_of<ForgeType>(k_forge_types, text);
}
constexpr std::optional<SourceScope> parse_source_scope(std::string_view text) {
    return value_of<SourceScope>(k_source_scopes, text);
}
constexpr std::optional<Visibility> parse_visibility(std::string_view text) {
    return value_of<Visibility>(k_visibilities, text);
}
constexpr std::optional<CloneTransport> parse_clone_transport(std::string_view text) {
    return value_of<CloneTransport>(k_clone_transports, text);
}
constexpr std::optional<LfsMode> parse_lfs_mode(std::string_view text) {
    return value_of<LfsMode>(k_lfs_modes, text);
}

} // namespace snapshotter::job
