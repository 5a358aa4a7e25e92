#include "snapshotter/git/object_table.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>

namespace snapshotter::git {
namespace {

constexpr std::size_t k_initial_slots = 1024;

} // namespace

ObjectTable::ObjectTable(std::size_t raw_len) : m_raw_len(raw_len) {
    if (raw_len < sizeof(std::uint64_t))
        throw std::invalid_argument("object ids shorter than 8 bytes");
    std::random_device device;
    m_key = std::uint64_t{device()} << 32 | device();
}

std::size_t ObjectTable::slot_of(std::string_view raw_oid) const {
    std::uint64_t prefix = 0;
    std::memcpy(&prefix, raw_oid.data(), sizeof prefix);
    // splitmix64's finalizer over the prefix xor a per-table random key: every
    // input bit reaches every output bit, and the key is not the pack's to know.
    std::uint64_t mixed = prefix ^ m_key;
    mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
    mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
    mixed ^= mixed >> 31;
    return static_cast<std::size_t>(mixed) & (m_slots.size() - 1);
}

std::size_t ObjectTable::probe(std::string_view raw_oid) const {
    std::size_t slot = slot_of(raw_oid);
    while (m_slots[slot] != 0 && this->raw_oid(m_slots[slot] - 1) != raw_oid)
        slot = (slot + 1) & (m_slots.size() - 1);
    return slot;
}

void ObjectTable::grow_index() {
    std::vector<std::uint32_t> old = std::move(m_slots);
    m_slots.assign(old.empty() ? k_initial_slots : old.size() * 2, 0);
    for (std::uint32_t entry : old)
        if (entry != 0)
            m_slots[probe(raw_oid(entry - 1))] = entry;
}

void ObjectTable::add(std::uint64_t offset, std::uint8_t type, std::string_view raw_oid) {
    if (raw_oid.size() != m_raw_len)
        throw std::invalid_argument("object id of another length");
    if (!m_offsets.empty() && offset <= m_offsets.back())
        throw std::invalid_argument("objects must be added in increasing offset order");
    if (m_offsets.size() >= std::numeric_limits<std::uint32_t>::max() - 1)
        throw std::length_error("too many objects for an object table");
    if ((m_indexed + 1) * 2 > m_slots.size())
        grow_index();
    const std::size_t slot = probe(raw_oid);
    m_offsets.push_back(offset);
    m_types.push_back(type);
    m_raw.append(raw_oid);
    if (m_slots[slot] != 0)
        return; // a duplicated object: found by offset, and by id at its first copy
    m_slots[slot] = static_cast<std::uint32_t>(m_offsets.size());
    ++m_indexed;
}

std::optional<std::size_t> ObjectTable::find_offset(std::uint64_t offset) const {
    auto it = std::lower_bound(m_offsets.begin(), m_offsets.end(), offset);
    if (it == m_offsets.end() || *it != offset)
        return std::nullopt;
    return static_cast<std::size_t>(it - m_offsets.begin());
}

std::optional<std::uint64_t> ObjectTable::find_oid(std::string_view raw_oid) const {
    if (m_slots.empty() || raw_oid.size() != m_raw_len)
        return std::nullopt;
    const std::uint32_t entry = m_slots[probe(raw_oid)];
    if (entry == 0)
        return std::nullopt;
    return m_offsets[entry - 1];
}

std::size_t ObjectTable::bytes() const {
    return m_offsets.capacity() * sizeof(std::uint64_t) + m_types.capacity() + m_raw.capacity() +
           m_slots.capacity() * sizeof(std::uint32_t);
}

} // namespace snapshotter::git
