// The pipeline after the loader: bytes → decoder → connection table → filter and analyzers →
// sink. Single-threaded; "now" always comes from the caller.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "tcptrail/connection_table.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/filter.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class Summary;

struct CollectorConfig {
  Filter filter;
  TableConfig table;
  bool transitions = false;  // emit every state change
  std::size_t summary_rows = 20;
};

// What the kernel side reports it could not deliver.
struct KernelDrops {
  std::uint64_t lost = 0;
  std::uint64_t no_storage = 0;
};

class Collector : public RecordHandler, private TableObserver {
 public:
  Collector(CollectorConfig config, RecordSink& sink);
  ~Collector() override;

  void on_record(std::span<const std::byte> bytes) override;
  // Feeds an already decoded event (tests, replay).
  void on_event(const Event& event);
  void tick(std::uint64_t now_ns);
  // Reports what is still pending and writes the stop record.
  void finish(std::uint64_t now_ns, const KernelDrops& drops);

  ConnectionTable& table() { return table_; }
  const DecodeStats& decode_stats() const { return decode_stats_; }
  std::uint64_t events() const { return decode_stats_.decoded + decode_stats_.rejected; }

 private:
  void on_state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                       std::uint64_t ns_in_old, bool ns_in_old_known,
                       std::uint64_t ts_ns) override;
  void on_retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                     std::uint64_t ts_ns) override;
  void on_reset(const Connection& conn, ResetDirection direction, TcpState state,
                std::uint64_t ts_ns) override;
  void on_closed(const Connection& conn, std::uint64_t ts_ns) override;

  CollectorConfig config_;
  RecordSink& sink_;
  ConnectionTable table_;
  std::unique_ptr<Summary> summary_;
  DecodeStats decode_stats_;
  std::uint64_t connections_reported_ = 0;
};

}  // namespace tcptrail
