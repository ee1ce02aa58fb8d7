#include <bit>

#include "tcptrail/connection_table.hpp"

namespace tcptrail {

// The table holds up to max_connections of these: keep each well under 256 bytes with its
// index entries.
static_assert(sizeof(Connection) <= 240, "Connection grew: check the memory per connection");

ConnectionStore::ConnectionStore() {
  rehash(16);
}

std::size_t ConnectionStore::probe(std::uint64_t id) const {
  const std::size_t mask = index_.size() - 1;
  for (std::size_t i = home(id);; i = (i + 1) & mask) {
    const std::uint32_t number = index_[i];
    if (number == kEmpty || record(number).sock_cookie == id) {
      return i;
    }
  }
}

Connection* ConnectionStore::find(std::uint64_t id) {
  const std::uint32_t number = index_[probe(id)];
  return number == kEmpty ? nullptr : &record(number);
}

const Connection* ConnectionStore::find(std::uint64_t id) const {
  const std::uint32_t number = index_[probe(id)];
  return number == kEmpty ? nullptr : &record(number);
}

Connection& ConnectionStore::insert(std::uint64_t id) {
  if (2 * (size_ + 1) > index_.size()) {
    rehash(2 * index_.size());
  }
  std::uint32_t number = 0;
  if (!free_.empty()) {
    number = free_.back();  // the most recently freed record is likely still in cache
    free_.pop_back();
  } else {
    if ((next_ >> kPageShift) >= pages_.size()) {
      pages_.push_back(std::make_unique<Connection[]>(kPageSize));
    }
    number = next_++;
  }
  Connection& conn = record(number);
  conn = Connection{};
  conn.sock_cookie = id;
  index_[probe(id)] = number;
  ++size_;
  return conn;
}

void ConnectionStore::erase(std::uint64_t id) {
  std::size_t hole = probe(id);
  const std::uint32_t number = index_[hole];
  if (number == kEmpty) {
    return;
  }
  // Backward-shift deletion (Knuth, TAOCP vol. 3, 6.4, Algorithm R), so lookups never wade
  // through tombstones: an entry after the hole moves into it unless its home slot lies
  // cyclically in (hole, entry].
  const std::size_t mask = index_.size() - 1;
  for (std::size_t j = (hole + 1) & mask; index_[j] != kEmpty; j = (j + 1) & mask) {
    const std::size_t home_j = home(record(index_[j]).sock_cookie);
    if (((j - home_j) & mask) >= ((j - hole) & mask)) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kEmpty;
  record(number).sock_cookie = 0;  // keys are never 0: marks the record free for for_each
  free_.push_back(number);
  --size_;
}

void ConnectionStore::reserve(std::size_t count) {
  const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, 2 * count));
  if (slots > index_.size()) {
    rehash(slots);
  }
}

void ConnectionStore::rehash(std::size_t slots) {
  index_.assign(slots, kEmpty);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
  const std::size_t mask = slots - 1;
  // From the records rather than the old index: a sequential walk.
  for (std::uint32_t number = 0; number < next_; ++number) {
    const std::uint64_t id = record(number).sock_cookie;
    if (id == 0) {
      continue;
    }
    std::size_t i = home(id);
    while (index_[i] != kEmpty) {
      i = (i + 1) & mask;
    }
    index_[i] = number;
  }
}

void ConnectionStore::for_each(const std::function<void(const Connection&)>& visit) const {
  for (std::uint32_t number = 0; number < next_; ++number) {
    if (const Connection& conn = record(number); conn.sock_cookie != 0) {
      visit(conn);
    }
  }
}

}  // namespace tcptrail
