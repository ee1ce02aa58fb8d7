// Per-process and per-peer counts of connections, close kinds, failed connects, retransmits,
// resets and leaks, and lifetime and handshake percentiles, for the stop record and the exit
// summary. Connections without a known owner
// share one process row (pid 0); a server's peers are client hosts, without their ephemeral
// ports.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "analyzers/duration_histogram.hpp"
#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class Summary {
public:
  void count_connection(const Connection& conn);
  void count_retransmits(const Connection& conn, std::uint32_t segs);
  void count_reset(const Connection& conn);
  void count_leak(const Connection& conn);

  // The busiest rows first, at most `limit` of each.
  [[nodiscard]] std::vector<ProcessRow> per_process(std::size_t limit) const;
  [[nodiscard]] std::vector<PeerRow> per_peer(std::size_t limit) const;

private:
  // Counted per connection, so keyed by value: rows are made only when asked for. Each key is
  // normalised so that two keys are equal exactly when their rows would be.
  struct ProcessKey {
    std::uint32_t pid = 0;
    std::array<char, 16> comm{};  // up to the first NUL, zero-filled after it
    bool operator==(const ProcessKey& other) const;
  };
  struct PeerKey {
    std::array<std::uint8_t, 16> addr{};  // IPv4 in the first 4 bytes, zero-filled after
    std::uint16_t port = 0;
    std::uint8_t family = 4;  // 4 or 6
    bool operator==(const PeerKey& other) const;
  };
  using Counts = SummaryCounts;
  // Rows are only ever added: entries in a vector, found through an open-addressing index of
  // entry numbers (linear probing, at most half full), one cache miss per lookup where a
  // node-based map takes two or more.
  template <typename Key> class CountTable {
  public:
    struct Entry {
      Key key;
      Counts counts;  // without percentiles: those are read from the histograms
      DurationHistogram lifetime;
      DurationHistogram handshake;
    };
    Entry& operator[](const Key& key);
    [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }

  private:
    static std::uint64_t hash(const Key& key);
    void rehash(std::size_t slots);

    std::vector<Entry> entries_;
    std::vector<std::uint32_t> index_;  // entry number + 1, 0 when empty; a power of two
    unsigned shift_ = 64;
  };

  template <typename Key> using Entry = typename CountTable<Key>::Entry;
  Entry<ProcessKey>& process_row(const Connection& conn);
  Entry<PeerKey>& peer_row(const Connection& conn);

  CountTable<ProcessKey> processes_;
  CountTable<PeerKey> peers_;
};

}  // namespace tcptrail
