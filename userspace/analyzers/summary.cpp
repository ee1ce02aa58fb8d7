#include "analyzers/summary.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>

#include "tcptrail/close_kind.hpp"

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

std::uint64_t weight(const SummaryCounts& c) {
  return c.connections + c.retransmits + c.resets + c.leaks;
}

// The busiest first; ties in the order `before` gives.
template <typename Row, typename Before>
std::vector<Row> top_rows(std::vector<Row> out, std::size_t limit, Before before) {
  std::sort(out.begin(), out.end(), [&](const Row& a, const Row& b) {
    return weight(a.counts) != weight(b.counts) ? weight(a.counts) > weight(b.counts)
                                                : before(a, b);
  });
  if (out.size() > limit) {
    out.resize(limit);
  }
  return out;
}

template <typename Entry> SummaryCounts with_percentiles(const Entry& entry) {
  SummaryCounts counts = entry.counts;
  counts.lifetime = entry.lifetime.percentiles();
  counts.handshake = entry.handshake.percentiles();
  return counts;
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

template <typename Key>
typename Summary::CountTable<Key>::Entry& Summary::CountTable<Key>::operator[](const Key& key) {
  if (2 * (entries_.size() + 1) > index_.size()) {
    rehash(std::max<std::size_t>(64, 2 * index_.size()));
  }
  const std::size_t mask = index_.size() - 1;
  std::size_t i = (hash(key) * 0x9e37'79b9'7f4a'7c15) >> shift_;
  for (; index_[i] != 0; i = (i + 1) & mask) {
    Entry& entry = entries_[index_[i] - 1];
    if (entry.key == key) {
      return entry;
    }
  }
  entries_.push_back({key, {}, {}, {}});
  index_[i] = static_cast<std::uint32_t>(entries_.size());
  return entries_.back();
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

Summary::Entry<Summary::ProcessKey>& Summary::process_row(const Connection& conn) {
  ProcessKey key;
  key.pid = conn.owner.pid;
  if (conn.owner.known()) {
    const std::string_view comm = conn.owner.comm_view();
    std::memcpy(key.comm.data(), comm.data(), comm.size());
  }
  return processes_[key];
}

Summary::Entry<Summary::PeerKey>& Summary::peer_row(const Connection& conn) {
  // IpAddress::to_string formats any family but 6 as IPv4, from the first 4 bytes.
  PeerKey key;
  key.family = conn.raddr.family == 6 ? 6 : 4;
  std::memcpy(key.addr.data(), conn.raddr.bytes.data(), key.family == 6 ? 16 : 4);
  // A server's peers connect from ephemeral ports: the peer is the client host. A client's
  // peer is the service it connects to, address and port. Whose role is unknown keeps no port,
  // which may be ephemeral.
  key.port = conn.role == Role::kClient ? conn.rport : 0;
  return peers_[key];
}

void Summary::count_connection(const Connection& conn) {
  const std::size_t kind = static_cast<std::size_t>(conn.close) % kCloseKindCount;
  const bool failed = failed_connect(conn);
  // A failed connect's time in SYN_SENT is no lifetime: only connections that worked count.
  const std::optional<std::uint64_t> lifetime_ns =
      conn.established ? conn.duration_ns(conn.end_ns) : std::nullopt;
  auto count = [&](auto& entry) {
    ++entry.counts.connections;
    ++entry.counts.closes[kind];
    entry.counts.failed_connects += failed ? 1 : 0;
    if (lifetime_ns) {
      entry.lifetime.add(*lifetime_ns / 1000);
    }
    if (conn.has_handshake) {
      entry.handshake.add(conn.handshake_us);
    }
  };
  count(process_row(conn));
  count(peer_row(conn));
}

void Summary::count_retransmits(const Connection& conn, std::uint32_t segs) {
  process_row(conn).counts.retransmits += segs;
  peer_row(conn).counts.retransmits += segs;
}

void Summary::count_reset(const Connection& conn) {
  ++process_row(conn).counts.resets;
  ++peer_row(conn).counts.resets;
}

void Summary::count_leak(const Connection& conn) {
  ++process_row(conn).counts.leaks;
  ++peer_row(conn).counts.leaks;
}

std::vector<ProcessRow> Summary::per_process(std::size_t limit) const {
  std::vector<ProcessRow> rows;
  rows.reserve(processes_.entries().size());
  for (const auto& entry : processes_.entries()) {
    const ProcessKey& key = entry.key;
    rows.push_back({key.pid,
                    std::string(key.comm.data(), strnlen(key.comm.data(), key.comm.size())),
                    with_percentiles(entry)});
  }
  return top_rows(std::move(rows), limit, [](const ProcessRow& a, const ProcessRow& b) {
    return std::tie(a.pid, a.comm) < std::tie(b.pid, b.comm);
  });
}

std::vector<PeerRow> Summary::per_peer(std::size_t limit) const {
  std::vector<PeerRow> rows;
  rows.reserve(peers_.entries().size());
  for (const auto& entry : peers_.entries()) {
    const PeerKey& key = entry.key;
    PeerRow row;
    row.addr.family = key.family;
    row.addr.bytes = key.addr;
    if (key.port != 0) {
      row.port = key.port;
    }
    row.counts = with_percentiles(entry);
    rows.push_back(row);
  }
  return top_rows(std::move(rows), limit, [](const PeerRow& a, const PeerRow& b) {
    return std::tie(a.addr, a.port) < std::tie(b.addr, b.port);
  });
}

}  // namespace tcptrail
