#include "snapshotter/git/bundle_writer.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>

namespace snapshotter::git {
namespace {

constexpr std::string_view k_v2_signature = "# v2 git bundle\n";
constexpr std::string_view k_v3_signature = "# v3 git bundle\n";
constexpr std::size_t k_pack_header_size = 12;

bool is_valid_refname_text(std::string_view name) {
    if (name.empty())
        return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

std::uint32_t read_be32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
}

} // namespace

std::size_t oid_hex_length(std::string_view object_format) {
    if (object_format == "sha1")
        return 40;
    if (object_format == "sha256")
        return 64;
    return 0;
}

bool is_valid_oid(std::string_view oid, std::string_view object_format) {
    std::size_t len = oid_hex_length(object_format);
    return len != 0 && oid.size() == len && std::all_of(oid.begin(), oid.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

Result<std::string> format_bundle_header(const BundleHeader& header) {
    std::string out;
    if (header.object_format == "sha1" && header.capabilities.empty()) {
        out = k_v2_signature;
    } else if (oid_hex_length(header.object_format) != 0) {
        out = k_v3_signature;
        out += fmt::format("@object-format={}\n", header.object_format);
        for (const auto& cap : header.capabilities) {
            if (!is_valid_refname_text(cap) || cap.starts_with("object-format="))
                return fail(Error::internal(fmt::format("invalid bundle capability \"{}\"", cap)));
            out += fmt::format("@{}\n", cap);
        }
    } else {
        return fail(Error::internal(fmt::format("unknown object format \"{}\"", header.object_format)));
    }
    for (const auto& oid : header.prerequisites) {
        if (!is_valid_oid(oid, header.object_format))
            return fail(Error::internal(fmt::format("invalid prerequisite oid \"{}\"", oid)));
        out += fmt::format("-{}\n", oid);
    }
    for (const auto& [oid, name] : header.refs) {
        if (!is_valid_oid(oid, header.object_format))
            return fail(Error::internal(fmt::format("invalid oid \"{}\" for {}", oid, name)));
        if (!is_valid_refname_text(name))
            return fail(Error::internal("refname with whitespace or control characters"));
        out += fmt::format("{} {}\n", oid, name);
    }
    out += '\n';
    return out;
}

Result<ParsedBundleHeader> parse_bundle_header(std::string_view bytes) {
    ParsedBundleHeader parsed;
    BundleHeader& h = parsed.header;
    bool v3 = false;
    if (bytes.starts_with(k_v3_signature))
        v3 = true;
    else if (!bytes.starts_with(k_v2_signature))
        return fail(Error::integrity("not a git bundle (no v2/v3 signature)"));
    std::size_t pos = k_v2_signature.size();
    bool in_capabilities = v3;
    while (true) {
        auto nl = bytes.find('\n', pos);
        if (nl == std::string_view::npos)
            return fail(Error::integrity("bundle header is truncated"));
        std::string_view line = bytes.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty())
            break;
        if (in_capabilities && line.front() == '@') {
            std::string_view cap = line.substr(1);
            if (cap.starts_with("object-format=")) {
                h.object_format = std::string(cap.substr(14));
                if (oid_hex_length(h.object_format) == 0)
                    return fail(Error::integrity(
                        fmt::format("unknown bundle object format \"{}\"", h.object_format)));
            } else {
                h.capabilities.emplace_back(cap);
            }
            continue;
        }
        in_capabilities = false;
        if (line.front() == '-') {
            // "-<oid>[ <comment>]"
            std::string_view rest = line.substr(1);
            std::string_view oid = rest.substr(0, rest.find(' '));
            if (!is_valid_oid(oid, h.object_format))
                return fail(Error::integrity("bundle header has a malformed prerequisite line"));
            h.prerequisites.emplace_back(oid);
            continue;
        }
        auto space = line.find(' ');
        if (space == std::string_view::npos)
            return fail(Error::integrity("bundle header has a malformed ref line"));
        std::string_view oid = line.substr(0, space);
        std::string_view name = line.substr(space + 1);
        if (!is_valid_oid(oid, h.object_format) || !is_valid_refname_text(name))
            return fail(Error::integrity("bundle header has a malformed ref line"));
        h.refs.emplace_back(std::string(oid), std::string(name));
    }
    parsed.size = pos;
    return parsed;
}

struct BundleWriter::Impl {
    OutputSink sink;
    Sha256 bundle_hash;
    std::uint64_t bundle_size = 0;
    bool header_written = false;
    std::size_t trailer_len = 0;
    std::unique_ptr<Digest> pack_digest;
    std::array<unsigned char, k_pack_header_size> pack_header{};
    std::size_t pack_header_len = 0;
    std::uint32_t pack_version = 0;
    std::uint64_t object_count = 0;
    std::uint64_t pack_size = 0;
    // The last `trailer_len` bytes seen: they may be the trailer, so they are
    // hashed only once more bytes push them out.
    std::string tail;

    Status emit(std::string_view data) {
        bundle_hash.update(data);
        bundle_size += data.size();
        return sink(std::as_bytes(std::span<const char>(data.data(), data.size())));
    }

    Status parse_pack_header(std::string_view& data) {
        std::size_t take = std::min(data.size(), k_pack_header_size - pack_header_len);
        std::copy_n(data.begin(), take, pack_header.begin() + static_cast<std::ptrdiff_t>(pack_header_len));
        pack_header_len += take;
        if (pack_header_len < k_pack_header_size)
            return {};
        if (std::string_view(reinterpret_cast<const char*>(pack_header.data()), 4) != "PACK")
            return fail(Error::integrity("pack does not start with \"PACK\""));
        pack_version = read_be32(pack_header.data() + 4);
        if (pack_version != 2 && pack_version != 3)
            return fail(Error::integrity(fmt::format("unsupported pack version {}", pack_version)));
        object_count = read_be32(pack_header.data() + 8);
        return {};
    }
};

BundleWriter::BundleWriter(OutputSink sink) : m_impl(std::make_unique<Impl>()) {
    m_impl->sink = std::move(sink);
}
BundleWriter::~BundleWriter() = default;
BundleWriter::BundleWriter(BundleWriter&&) noexcept = default;
BundleWriter& BundleWriter::operator=(BundleWriter&&) noexcept = default;

Status BundleWriter::write_header(const BundleHeader& header) {
    if (m_impl->header_written)
        return fail(Error::internal("bundle header written twice"));
    auto text = format_bundle_header(header);
    if (!text)
        return fail(text.error());
    m_impl->header_written = true;
    m_impl->trailer_len = oid_hex_length(header.object_format) / 2;
    m_impl->pack_digest = std::make_unique<Digest>(header.object_format);
    return m_impl->emit(*text);
}

Status BundleWriter::write_pack(std::span<const std::byte> data) {
    return write_pack(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

Status BundleWriter::write_pack(std::string_view data) {
    Impl& m = *m_impl;
    if (!m.header_written)
        return fail(Error::internal("pack bytes before the bundle header"));
    if (data.empty())
        return {};
    std::string_view header_part = data;
    if (m.pack_header_len < k_pack_header_size)
        if (auto s = m.parse_pack_header(header_part); !s)
            return s;
    m.pack_size += data.size();
    // Hash everything except the last `trailer_len` bytes seen so far.
    if (data.size() >= m.trailer_len) {
        m.pack_digest->update(m.tail);
        m.pack_digest->update(data.substr(0, data.size() - m.trailer_len));
        m.tail.assign(data.substr(data.size() - m.trailer_len));
    } else {
        m.tail.append(data);
        if (m.tail.size() > m.trailer_len) {
            std::size_t excess = m.tail.size() - m.trailer_len;
            m.pack_digest->update(std::string_view(m.tail).substr(0, excess));
            m.tail.erase(0, excess);
        }
    }
    return m.emit(data);
}

Result<BundleSummary> BundleWriter::finish() {
    Impl& m = *m_impl;
    if (!m.header_written)
        return fail(Error::internal("bundle finished without a header"));
    if (m.pack_header_len < k_pack_header_size || m.pack_size < k_pack_header_size + m.trailer_len)
        return fail(Error::integrity(fmt::format("pack is truncated ({} bytes)", m.pack_size)));
    std::string expected = m.pack_digest->hex_digest();
    std::string trailer = to_hex({reinterpret_cast<const unsigned char*>(m.tail.data()), m.tail.size()});
    if (expected != trailer)
        return fail(Error::integrity(
            fmt::format("pack checksum mismatch: trailer {} but content hashes to {}", trailer, expected)));
    BundleSummary out;
    out.bundle_size = m.bundle_size;
    out.sha256 = m.bundle_hash.hex_digest();
    out.pack_version = m.pack_version;
    out.object_count = m.object_count;
    out.pack_size = m.pack_size;
    out.pack_checksum = trailer;
    return out;
}

} // namespace snapshotter::git
