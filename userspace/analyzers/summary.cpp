#include "analyzers/summary.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <string_view>

namespace tcptrail {

namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2);
  return h;
}

std::uint64_t load64(const void* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

CountRow make_row(std::string key, const auto& counts) {
  return {std::move(key), counts.connections, counts.retransmits, counts.resets, counts.leaks};
}

std::vector<CountRow> top_rows(std::vector<CountRow> out, std::size_t limit) {
  auto weight = [](const CountRow& r) {
    return r.connections + r.retransmits + r.resets + r.leaks;
  };
  std::sort(out.begin(), out.end(), [&](const CountRow& a, const CountRow& b) {
    return weight(a) != weight(b) ? weight(a) > weight(b) : a.key < b.key;
  });
  if (out.size() > limit) {
    out.resize(limit);
  }
  return out;
}

}  // namespace

// By words: std::array's == calls memcmp.
bool Summary::ProcessKey::operator==(const ProcessKey& other) const {
  return pid == other.pid && load64(comm.data()) == load64(other.comm.data()) &&
         load64(comm.data() + 8) == load64(other.comm.data() + 8);
}

bool Summary::PeerKey::operator==(const PeerKey& other) const {
  return port == other.port && family == other.family &&
         load64(addr.data()) == load64(other.addr.data()) &&
         load64(addr.data() + 8) == load64(other.addr.data() + 8);
}

template <> std::uint64_t Summary::CountTable<Summary::ProcessKey>::hash(const ProcessKey& key) {
  return mix(mix(key.pid, load64(key.comm.data())), load64(key.comm.data() + 8));
}

template <> std::uint64_t Summary::CountTable<Summary::PeerKey>::hash(const PeerKey& key) {
  const std::uint64_t port_family = key.port | std::uint64_t{key.family} << 16;
  return mix(mix(port_family, load64(key.addr.data())), load64(key.addr.data() + 8));
}

template <typename Key> Summary::Counts& Summary::CountTable<Key>::operator[](const Key& key) {
  if (2 * (entries_.size() + 1) > index_.size()) {
    rehash(std::max<std::size_t>(64, 2 * index_.size()));
  }
  const std::size_t mask = index_.size() - 1;
  std::size_t i = (hash(key) * 0x9e37'79b9'7f4a'7c15) >> shift_;
  for (; index_[i] != 0; i = (i + 1) & mask) {
    Entry& entry = entries_[index_[i] - 1];
    if (entry.key == key) {
      return entry.counts;
    }
  }
  entries_.push_back({key, {}});
  index_[i] = static_cast<std::uint32_t>(entries_.size());
  return entries_.back().counts;
}

template <typename Key> void Summary::CountTable<Key>::rehash(std::size_t slots) {
  index_.assign(slots, 0);
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
  for (std::size_t n = 0; n < entries_.size(); ++n) {
    std::size_t i = (hash(entries_[n].key) * 0x9e37'79b9'7f4a'7c15) >> shift_;
    while (index_[i] != 0) {
      i = (i + 1) & (slots - 1);
    }
    index_[i] = static_cast<std::uint32_t>(n + 1);
  }
}

Summary::Counts& Summary::process_row(const Connection& conn) {
  ProcessKey key;
  key.pid = conn.owner.pid;
  const std::string_view comm = conn.owner.comm_view();
  std::memcpy(key.comm.data(), comm.data(), comm.size());
  return processes_[key];
}

Summary::Counts& Summary::peer_row(const Connection& conn) {
  // IpAddress::to_string formats any family but 6 as IPv4, from the first 4 bytes.
  PeerKey key;
  key.family = conn.raddr.family == 6 ? 6 : 4;
  std::memcpy(key.addr.data(), conn.raddr.bytes.data(), key.family == 6 ? 16 : 4);
  // A server's peers connect from ephemeral ports: the peer is the client host. A client's
  // peer is the service it connects to, address and port.
  key.port = conn.role == Role::kServer ? 0 : conn.rport;
  return peers_[key];
}

void Summary::count_connection(const Connection& conn) {
  ++process_row(conn).connections;
  ++peer_row(conn).connections;
}

void Summary::count_retransmits(const Connection& conn, std::uint32_t segs) {
  process_row(conn).retransmits += segs;
  peer_row(conn).retransmits += segs;
}

void Summary::count_reset(const Connection& conn) {
  ++process_row(conn).resets;
  ++peer_row(conn).resets;
}

void Summary::count_leak(const Connection& conn) {
  ++process_row(conn).leaks;
  ++peer_row(conn).leaks;
}

std::vector<CountRow> Summary::per_process(std::size_t limit) const {
  std::vector<CountRow> rows;
  rows.reserve(processes_.entries().size());
  for (const auto& [key, counts] : processes_.entries()) {
    std::string text = std::to_string(key.pid);
    text += ' ';
    text.append(key.comm.data(), strnlen(key.comm.data(), key.comm.size()));
    rows.push_back(make_row(std::move(text), counts));
  }
  return top_rows(std::move(rows), limit);
}

std::vector<CountRow> Summary::per_peer(std::size_t limit) const {
  std::vector<CountRow> rows;
  rows.reserve(peers_.entries().size());
  for (const auto& [key, counts] : peers_.entries()) {
    IpAddress address;
    address.family = key.family;
    address.bytes = key.addr;
    std::string text = address.to_string();
    if (key.port != 0) {
      text = key.family == 6 ? "[" + text + "]:" : text + ":";
      text += std::to_string(key.port);
    }
    rows.push_back(make_row(std::move(text), counts));
  }
  return top_rows(std::move(rows), limit);
}

}  // namespace tcptrail
