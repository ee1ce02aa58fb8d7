// The pipeline after the loader: bytes → decoder → connection table → filter and analyzers →
// sink. Single-threaded (but for the LiveConnections it reads); "now" always comes from the
// caller.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "analyzers/interim_tracker.hpp"
#include "analyzers/leak_detector.hpp"
#include "analyzers/retransmit_folder.hpp"
#include "tcptrail/connection_table.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/filter.hpp"
#include "tcptrail/records.hpp"
#include "tcptrail/socket_snapshot.hpp"

namespace tcptrail {

class Summary;

struct CollectorConfig {
  Filter filter;
  TableConfig table;
  bool transitions = false;  // emit every state change
  // Connection, state, retransmit and reset records; off for the leaks-only view.
  bool lifecycle_records = true;
  // Identical retransmits of a connection within this window are one record (--retransmits:
  // 1 s); 0 folds none.
  std::uint64_t retransmit_fold_ns = 0;
  LeakConfig leaks;
  std::size_t summary_rows = 20;
};

// The role of a connection found at start, not seen being born: server when something listens
// on its local port; otherwise, when the ephemeral range is known, client from a local port in
// it, server from a local port outside it towards a peer's port in it (a child whose listener
// closed), unknown else; client when the range is unknown.
Role preexisting_role(const SocketSnapshot& socket, std::span<const std::uint16_t> listening,
                      const NamespacePorts& ports);

class Collector : public RecordHandler, private TableObserver, private LeakObserver {
public:
  // live: the lifecycles the kernel folds (the loader's, or a test's).
  Collector(CollectorConfig config, RecordSink& sink, FdOwnerLookup& fd_owners,
            LiveConnections& live);
  ~Collector() override;

  void on_record(std::span<const std::byte> bytes) override;
  // Feed an already decoded event or finished connection (tests, replay).
  void on_event(const Event& event);
  void on_connection(const Connection& conn);
  void tick(std::uint64_t now_ns);
  // Sockets found in the kernel's table at start: tracked as preexisting from now_ns. The fd
  // owner lookup must already know their holders. ports: the namespace's ephemeral range (size
  // 0 when unknown), which tells a server's child whose listener is gone from a client.
  void add_preexisting(std::span<const SocketSnapshot> sockets, std::uint32_t netns_ino,
                       const NamespacePorts& ports, std::uint64_t now_ns);
  // A periodic sweep of one namespace's socket table (see LeakDetector::on_sweep).
  void on_sweep(const SweepDigest& digest, std::uint64_t now_ns);
  // The open connections every --interim period: an interim record for each that passes the
  // filter, with what changed since its last.
  void on_interim(const InterimDump& dump);
  // Network namespaces in which sockets were born while tracing, less those forgotten.
  const std::vector<std::uint32_t>& namespaces() const { return namespaces_; }
  // The namespace is gone: it is no longer swept.
  void forget_namespace(std::uint32_t netns_ino);
  // Leaks reported and not yet resolved that pass the filter.
  std::vector<Suspect> suspects(std::uint64_t now_ns) const;
  // Per swept namespace, the share of the local port range taken towards the worst
  // destination that passes the filter, as TIME_WAIT pressure records are filtered (none when
  // the filter names processes, containers or units).
  std::map<std::uint32_t, double> port_ratios(std::uint64_t now_ns) const;
  // Reports what is still pending and writes the stop record, with what the run loop counted.
  void finish(std::uint64_t now_ns, const RunStats& run);

  ConnectionTable& table() { return table_; }
  const DecodeStats& decode_stats() const { return decode_stats_; }
  std::uint64_t events() const { return decode_stats_.decoded + decode_stats_.rejected; }

private:
  void on_state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                       std::uint64_t ns_in_old, bool ns_in_old_known, std::uint64_t ts_ns) override;
  void on_retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                     std::uint64_t ts_ns) override;
  void on_reset(const Connection& conn, ResetDirection direction, TcpState state,
                std::uint64_t ts_ns) override;
  void on_closed(const Connection& conn, std::uint64_t ts_ns) override;
  void on_leak(const Connection& conn, const Leak& leak) override;
  void on_leak_resolved(const Connection& conn, const Leak& leak) override;
  void on_time_wait_pressure(const TimeWaitPressure& pressure) override;
  bool leak_matches(const Connection& conn, const Leak& leak) const;
  bool pressure_matches(const TimeWaitPressure& pressure) const;
  void note_namespace(std::uint32_t netns_ino);
  void on_decoded(const Event& event);

  CollectorConfig config_;
  RecordSink& sink_;
  FdOwnerLookup& fd_owners_;
  ConnectionTable table_;
  LeakDetector leaks_;
  InterimTracker interim_;
  RetransmitFolder retransmits_;
  std::vector<std::uint32_t> namespaces_;
  std::unique_ptr<Summary> summary_;
  DecodeStats decode_stats_;
  std::uint64_t connections_reported_ = 0;
};

}  // namespace tcptrail
