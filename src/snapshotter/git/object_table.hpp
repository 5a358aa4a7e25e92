// The objects a pack scan reported, in pack order, in flat arrays: by pack
// offset (binary search: entries arrive in increasing offset order) and by
// raw object id (open addressing over indices, keyed per table so that a
// pack cannot choose ids that collide).
//
// Memory: 9 bytes plus the raw id (20 for SHA-1, 32 for SHA-256) per object,
// and 4 bytes per index slot, kept at most half full: 37-45 bytes per object
// for SHA-1, against about 220 for the two hash maps of strings this
// replaced (bench/README.md, "Peak memory of a full snapshot with many small
// blobs"). The arrays grow geometrically, so a growth step briefly holds the
// old and the new array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapshotter::git {

class ObjectTable {
  public:
    // `raw_len`: the raw object id's length (20 or 32).
    explicit ObjectTable(std::size_t raw_len);

    // Add the object at `offset` (greater than every offset added before:
    // fails with std::invalid_argument otherwise, as it does on an id of
    // another length). A duplicated object (an id added before) is found by
    // its offset like any other, and by its id at its first offset.
    void add(std::uint64_t offset, std::uint8_t type, std::string_view raw_oid);

    // The index of the object at `offset`, if one was added there.
    [[nodiscard]] std::optional<std::size_t> find_offset(std::uint64_t offset) const;
    // The offset of the first object added with `raw_oid`.
    [[nodiscard]] std::optional<std::uint64_t> find_oid(std::string_view raw_oid) const;

    [[nodiscard]] std::uint8_t type(std::size_t index) const { return m_types[index]; }
    [[nodiscard]] std::string_view raw_oid(std::size_t index) const {
        return std::string_view(m_raw).substr(index * m_raw_len, m_raw_len);
    }
    [[nodiscard]] std::size_t size() const { return m_offsets.size(); }
    // Bytes held by the arrays (capacity), for tests and accounting.
    [[nodiscard]] std::size_t bytes() const;

  private:
    [[nodiscard]] std::size_t slot_of(std::string_view raw_oid) const;
    // The slot holding `raw_oid`, else the empty slot where it would go.
    [[nodiscard]] std::size_t probe(std::string_view raw_oid) const;
    void grow_index();

    std::size_t m_raw_len;
    std::uint64_t m_key;
    std::vector<std::uint64_t> m_offsets;
    std::vector<std::uint8_t> m_types;
    std::string m_raw;                  // the raw ids, m_raw_len bytes each, in order
    std::vector<std::uint32_t> m_slots; // 0: empty, else index + 1
    std::size_t m_indexed = 0;          // ids in m_slots (duplicates are not)
};

} // namespace snapshotter::git
