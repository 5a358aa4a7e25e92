#include "snapshotter/storage/s3/xml.hpp"

#include <charconv>

namespace snapshotter::storage::xml {
namespace {

void append_utf8(std::string& out, unsigned long cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

} // namespace

std::vector<std::string_view> all(std::string_view doc, std::string_view tag) {
    std::vector<std::string_view> out;
    std::string open = "<" + std::string(tag);
    std::string close = "</" + std::string(tag) + ">";
    std::size_t pos = 0;
    while ((pos = doc.find(open, pos)) != std::string_view::npos) {
        std::size_t after = pos + open.size();
        if (after >= doc.size())
            break;
        char next = doc[after];
        // <Key> or <Key attr="..."> or <Key/>, but not <KeyMarker>.
        if (next != '>' && next != ' ' && next != '/') {
            pos = after;
            continue;
        }
        std::size_t gt = doc.find('>', after);
        if (gt == std::string_view::npos)
            break;
        if (doc[gt - 1] == '/') {
            out.emplace_back();
            pos = gt + 1;
            continue;
        }
        std::size_t end = doc.find(close, gt + 1);
        if (end == std::string_view::npos)
            break;
        out.push_back(doc.substr(gt + 1, end - gt - 1));
        pos = end + close.size();
    }
    return out;
}

std::optional<std::string> first(std::string_view doc, std::string_view tag) {
    auto found = all(doc, tag);
    if (found.empty())
        return std::nullopt;
    return unescape(found.front());
}

std::string unescape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out.push_back(text[i]);
            continue;
        }
        auto semi = text.find(';', i);
        if (semi == std::string_view::npos || semi - i > 12) {
            out.push_back('&');
            continue;
        }
        std::string_view entity = text.substr(i + 1, semi - i - 1);
        if (entity == "amp")
            out.push_back('&');
        else if (entity == "lt")
            out.push_back('<');
        else if (entity == "gt")
            out.push_back('>');
        else if (entity == "quot")
            out.push_back('"');
        else if (entity == "apos")
            out.push_back('\'');
        else if (entity.starts_with('#')) {
            unsigned long cp = 0;
            bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
            std::string_view digits = entity.substr(hex ? 2 : 1);
            auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
            if (ec != std::errc() || p != digits.data() + digits.size() || cp > 0x10ffff) {
                out.push_back('&');
                continue;
            }
            append_utf8(out, cp);
        } else {
            out.push_back('&');
            continue;
        }
        i = semi;
    }
    return out;
}

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        case '\r':
            out += "&#13;";
            break;
        case '\n':
            out += "&#10;";
            break;
        default:
            out.push_back(c);
        }
    }
    return out;
}

} // namespace snapshotter::storage::xml
