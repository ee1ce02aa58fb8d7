#include "tcptrail/collector.hpp"

#include "analyzers/summary.hpp"

namespace tcptrail {

Collector::Collector(CollectorConfig config, RecordSink& sink)
    : config_(std::move(config)),
      sink_(sink),
      table_(config_.table, *this),
      summary_(std::make_unique<Summary>()) {}

Collector::~Collector() = default;

void Collector::on_record(std::span<const std::byte> bytes) {
  if (auto event = decode_event(bytes, decode_stats_)) {
    table_.on_event(*event);
  }
}

void Collector::on_event(const Event& event) {
  ++decode_stats_.decoded;
  table_.on_event(event);
}

void Collector::tick(std::uint64_t now_ns) { table_.tick(now_ns); }

void Collector::on_state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                                std::uint64_t ns_in_old, bool ns_in_old_known,
                                std::uint64_t ts_ns) {
  if (config_.transitions && config_.filter.matches(conn)) {
    sink_.state_change(conn, old_state, new_state, ns_in_old, ns_in_old_known, ts_ns);
  }
}

void Collector::on_retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                              std::uint64_t ts_ns) {
  if (config_.filter.matches(conn)) {
    summary_->count_retransmits(conn, segs);
    sink_.retransmit(conn, state, segs, ts_ns);
  }
}

void Collector::on_reset(const Connection& conn, ResetDirection direction, TcpState state,
                         std::uint64_t ts_ns) {
  if (config_.filter.matches(conn)) {
    summary_->count_reset(conn);
    sink_.reset(conn, direction, state, ts_ns);
  }
}

void Collector::on_closed(const Connection& conn, std::uint64_t ts_ns) {
  if (config_.filter.matches(conn)) {
    ++connections_reported_;
    summary_->count_connection(conn);
    sink_.connection(conn, ts_ns);
  }
}

void Collector::finish(std::uint64_t now_ns, const KernelDrops& drops) {
  table_.drain();
  StopInfo info;
  info.ts_ns = now_ns;
  info.events = events();
  info.lost = drops.lost;
  info.rejected = decode_stats_.rejected;
  info.no_storage = drops.no_storage;
  info.connections = connections_reported_;
  info.live = table_.live();
  info.overflow = table_.stats().overflow;
  info.per_process = summary_->per_process(config_.summary_rows);
  info.per_peer = summary_->per_peer(config_.summary_rows);
  sink_.stop(info);
  sink_.flush();
}

}  // namespace tcptrail
