#include "snapshotter/lfs/config.hpp"

#include <cctype>
#include <fmt/format.h>

namespace snapshotter::lfs {
namespace {

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool is_alnum(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

Error bad(std::string_view what, std::size_t line) {
    return Error::integrity(fmt::format(".lfsconfig line {}: {}", line, what));
}

// A git config file read one character at a time.
class ConfigReader {
  public:
    explicit ConfigReader(std::string_view text) : m_text(text) {}

    Result<std::optional<std::string>> lfs_url() {
        std::optional<std::string> url;
        bool in_lfs = false;
        while (true) {
            skip_blank();
            if (at_end())
                return url;
            const char c = peek();
            if (c == '#' || c == ';') {
                skip_line();
            } else if (c == '[') {
                auto section = read_section();
                if (!section)
                    return fail(section.error());
                in_lfs = *section;
            } else if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
                std::string name;
                while (!at_end() && (is_alnum(peek()) || peek() == '-'))
                    name.push_back(lower(next()));
                auto value = read_value();
                if (!value)
                    return fail(value.error());
                if (in_lfs && name == "url") // the last one wins; a bare "url" has no value
                    url = std::move(*value);
            } else {
                return fail(bad("not a section, a variable or a comment", m_line));
            }
        }
    }

  private:
    [[nodiscard]] bool at_end() const { return m_pos >= m_text.size(); }
    [[nodiscard]] char peek() const { return m_text[m_pos]; }
    char next() {
        const char c = m_text[m_pos++];
        if (c == '\n')
            ++m_line;
        return c;
    }
    void skip_blank() {
        while (!at_end() && std::isspace(static_cast<unsigned char>(peek())) != 0)
            next();
    }
    void skip_line() {
        while (!at_end() && next() != '\n') {
        }
    }

    // "[name]", "[name "sub"]" or the old "[name.sub]": whether it is exactly [lfs].
    Result<bool> read_section() {
        next(); // '['
        std::string name;
        while (!at_end() && (is_alnum(peek()) || peek() == '-' || peek() == '.'))
            name.push_back(lower(next()));
        bool subsection = false;
        if (!at_end() && (peek() == ' ' || peek() == '\t')) {
            while (!at_end() && (peek() == ' ' || peek() == '\t'))
                next();
            if (at_end() || next() != '"')
                return fail(bad("a section header with a space needs a quoted subsection", m_line));
            while (!at_end() && peek() != '"') {
                if (peek() == '\n')
                    return fail(bad("a subsection name is not closed", m_line));
                if (next() == '\\' && !at_end())
                    next();
            }
            if (at_end())
                return fail(bad("a subsection name is not closed", m_line));
            next(); // '"'
            subsection = true;
        }
        if (at_end() || next() != ']' || name.empty())
            return fail(bad("a section header is not closed", m_line));
        return name == "lfs" && !subsection;
    }

    // After a variable name: "= value", or nothing (a boolean without a value: nullopt).
    Result<std::optional<std::string>> read_value() {
        while (!at_end() && (peek() == ' ' || peek() == '\t'))
            next();
        if (at_end() || peek() == '\n' || peek() == '#' || peek() == ';' || peek() == '\r') {
            skip_line();
            return std::nullopt;
        }
        if (next() != '=')
            return fail(bad("a variable name is not followed by '='", m_line));
        while (!at_end() && (peek() == ' ' || peek() == '\t'))
            next();
        std::string value;
        std::string pending_space; // kept only when more of the value follows
        bool quoted = false;
        while (!at_end()) {
            const char c = peek();
            if (c == '\n' && !quoted)
                break;
            if (c == '\n')
                return fail(bad("a quoted value is not closed", m_line));
            next();
            if (!quoted && (c == ' ' || c == '\t' || c == '\r')) {
                pending_space.push_back(c == '\r' ? ' ' : c);
                continue;
            }
            if (!quoted && (c == '#' || c == ';')) {
                skip_line();
                return value;
            }
            value += pending_space;
            pending_space.clear();
            if (c == '"') {
                quoted = !quoted;
            } else if (c == '\\') {
                if (at_end())
                    return fail(bad("a value ends in a backslash", m_line));
                const char e = next();
                switch (e) {
                case '\n':
                    break; // a continuation line
                case 'n':
                    value.push_back('\n');
                    break;
                case 't':
                    value.push_back('\t');
                    break;
                case 'b':
                    value.push_back('\b');
                    break;
                case '\\':
                case '"':
                    value.push_back(e);
                    break;
                default:
                    return fail(bad("a value has an unknown escape", m_line));
                }
            } else {
                value.push_back(c);
            }
        }
        if (quoted)
            return fail(bad("a quoted value is not closed", m_line));
        return value;
    }

    std::string_view m_text;
    std::size_t m_pos = 0;
    std::size_t m_line = 1;
};

} // namespace

Result<std::optional<std::string>> lfs_url_in_config(std::string_view content) {
    if (content.size() > k_max_lfsconfig_bytes)
        return fail(Error::integrity(fmt::format(".lfsconfig is {} bytes, more than the {} read",
                                                 content.size(), k_max_lfsconfig_bytes)));
    return ConfigReader(content).lfs_url();
}

} // namespace snapshotter::lfs
