// Which ref names a snapshot may store: git's own syntax rules
// (git-check-ref-format, as refs.c applies them with no flags), names a file
// system cannot hold, and names whose bytes no log or manifest should carry.
// Pure functions; the engines screen every listed ref through screen_refs()
// before anything is fetched, so a name restore would refuse is never stored.
#pragma once

#include "snapshotter/git/git.hpp"
#include "snapshotter/util/error.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::git {

// The longest ref name stored, in bytes. git keeps a ref as a file at
// <git-dir>/<name> while it updates it, and Linux refuses paths of 4096
// bytes or more (PATH_MAX); 2048 leaves the other half for the directory a
// restore writes into.
inline constexpr std::size_t k_max_refname_bytes = 2048;
// The longest component (between slashes) stored, in bytes: NAME_MAX of
// every Linux file system, minus the ".lock" git appends while updating.
inline constexpr std::size_t k_max_refname_component_bytes = 255 - 5;

// True when `name` passes `git check-ref-format <name>` (no options): at
// least two components, none empty or starting with '.', none ending in
// ".lock", no "..", "@{", control character, space, ~ ^ : ? * [ \ , not
// ending in '/' or '.', and not "@".
bool is_valid_refname(std::string_view name);

// True when `name` holds a control character (a byte below 0x20, or 0x7f).
bool has_control_character(std::string_view name);

// Why a snapshot refuses to store `name` (syntax git rejects, or a length
// past k_max_refname_bytes / k_max_refname_component_bytes); nullopt when it
// may be stored.
std::optional<std::string> refname_refusal(std::string_view name);

// The refs of a listing split into those a snapshot stores and those it
// refuses (name -> reason).
struct ScreenedRefs {
    RefMap kept;
    std::map<std::string, std::string> refused;
};

// Split `refs` by refname_refusal(); a name with a control character fails
// the whole listing with a GitError naming `remote` (such a name is hostile,
// not merely unusual).
Result<ScreenedRefs> screen_refs(RefMap refs, std::string_view remote);

// `head` (the ref HEAD names) when a restore could point HEAD at it: under
// refs/ and storable; nullopt otherwise (HEAD then counts as absent).
std::optional<std::string> screen_head(const std::optional<std::string>& head);

// The four states of a repository's HEAD.
enum class HeadKind {
    symbolic, // names a branch that exists
    unborn,   // names a branch that does not exist (yet)
    detached, // holds an object id
    absent,   // the server does not say, or names something no restore could point at
};

// What HEAD is: `target` is the ref name (symbolic, unborn) or the object id (detached).
struct HeadState {
    HeadKind kind = HeadKind::absent;
    std::string target;
    bool operator==(const HeadState&) const = default;
};

// "symbolic", "unborn", "detached" or "absent".
std::string_view head_kind_name(HeadKind kind);
// The kind named `name`; nullopt for any other text.
std::optional<HeadKind> head_kind_from_name(std::string_view name);

// HEAD from what a server said: `symref` (its target, when symbolic) and
// `oid` (what it resolves to; none when unborn). A target screen_head()
// refuses counts as no target: the oid then makes HEAD detached.
HeadState classify_head(const std::optional<std::string>& symref, const std::optional<std::string>& oid);

// `name` cut to at most `max` bytes for a report, with "..." when cut.
std::string refname_excerpt(std::string_view name, std::size_t max = 200);

} // namespace snapshotter::git
