#include "snapshotter/git/refname.hpp"

#include "snapshotter/git/pktline.hpp"

#include <fmt/format.h>

namespace snapshotter::git {
namespace {

// A byte git never allows in a ref name (refs.c refname_disposition 4).
bool forbidden_byte(unsigned char c) {
    return c < 0x20 || c == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '[' ||
           c == '\\' || c == '*';
}

// refs.c check_refname_component(): the length of the component at the
// start of `rest`, or nullopt when it breaks a rule. A zero length means the
// component is empty, which the caller refuses too.
std::optional<std::size_t> component_length(std::string_view rest) {
    char last = '\0';
    std::size_t i = 0;
    for (; i < rest.size() && rest[i] != '/'; ++i) {
        const char c = rest[i];
        if (c == '\0' || forbidden_byte(static_cast<unsigned char>(c)))
            return std::nullopt;
        if (c == '.' && last == '.')
            return std::nullopt;
        if (c == '{' && last == '@')
            return std::nullopt;
        last = c;
    }
    if (i == 0)
        return 0;
    if (rest[0] == '.')
        return std::nullopt;
    if (rest.substr(0, i).ends_with(".lock"))
        return std::nullopt;
    return i;
}

} // namespace

bool is_valid_refname(std::string_view name) {
    if (name == "@")
        return false;
    int components = 0;
    std::string_view rest = name;
    while (true) {
        auto length = component_length(rest);
        if (!length || *length == 0)
            return false;
        ++components;
        if (*length == rest.size())
            break;
        rest.remove_prefix(*length + 1);
    }
    if (name.ends_with('.'))
        return false;
    return components >= 2;
}

bool has_control_character(std::string_view name) {
    for (char c : name)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return true;
    return false;
}

std::optional<std::string> refname_refusal(std::string_view name) {
    if (!is_valid_refname(name))
        return std::string("git refuses this name (git check-ref-format)");
    if (name.size() > k_max_refname_bytes)
        return fmt::format("the name is {} bytes long, more than {} (no restore could create it)",
                           name.size(), k_max_refname_bytes);
    for (std::string_view rest = name; !rest.empty();) {
        auto component = rest.substr(0, rest.find('/'));
        if (component.size() > k_max_refname_component_bytes)
            return fmt::format("a component of the name is {} bytes long, more than {} (no file system "
                               "could hold it)",
                               component.size(), k_max_refname_component_bytes);
        rest.remove_prefix(std::min(rest.size(), component.size() + 1));
    }
    return std::nullopt;
}

Result<ScreenedRefs> screen_refs(RefMap refs, std::string_view remote) {
    ScreenedRefs out;
    for (auto it = refs.begin(); it != refs.end();) {
        if (has_control_character(it->first))
            return fail(
                Error::git(fmt::format("{} advertised a ref name holding a control character (\"{}\")",
                                       remote, wire_excerpt(it->first))));
        if (auto why = refname_refusal(it->first)) {
            out.refused.emplace(it->first, std::move(*why));
            it = refs.erase(it);
        } else {
            ++it;
        }
    }
    out.kept = std::move(refs);
    return out;
}

std::optional<std::string> screen_head(const std::optional<std::string>& head) {
    if (!head || !head->starts_with("refs/") || has_control_character(*head) || refname_refusal(*head))
        return std::nullopt;
    return head;
}

std::string_view head_kind_name(HeadKind kind) {
    switch (kind) {
    case HeadKind::symbolic:
        return "symbolic";
    case HeadKind::unborn:
        return "unborn";
    case HeadKind::detached:
        return "detached";
    case HeadKind::absent:
        break;
    }
    return "absent";
}

std::optional<HeadKind> head_kind_from_name(std::string_view name) {
    for (auto kind : {HeadKind::symbolic, HeadKind::unborn, HeadKind::detached, HeadKind::absent})
        if (head_kind_name(kind) == name)
            return kind;
    return std::nullopt;
}

HeadState classify_head(const std::optional<std::string>& symref, const std::optional<std::string>& oid) {
    if (auto target = screen_head(symref))
        return {oid ? HeadKind::symbolic : HeadKind::unborn, *target};
    if (oid && !oid->empty())
        return {HeadKind::detached, *oid};
    return {};
}

std::string refname_excerpt(std::string_view name, std::size_t max) {
    if (name.size() <= max)
        return std::string(name);
    // Cut at a character boundary so a UTF-8 name stays valid.
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80)
        --cut;
    return std::string(name.substr(0, cut)) + "...";
}

} // namespace snapshotter::git
