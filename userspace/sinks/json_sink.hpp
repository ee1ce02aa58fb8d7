// NDJSON output: one JSON object per record and line. Field names, order and types are a
// contract with consumers (json_sink_test pins them); ids that may exceed 2^53 are strings,
// times are RFC 3339 UTC with nanoseconds, durations are milliseconds.
#pragma once

#include <ostream>

#include "sinks/json_writer.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

// Writes to the stream it is given, which must outlive it. Lines are buffered and reach the
// stream on flush(), when the buffer passes kFlushBytes, and on destruction.
class JsonSink : public RecordSink {
public:
  static constexpr std::size_t kFlushBytes = 64 * 1024;

  JsonSink(std::ostream& out, WallClock clock);
  ~JsonSink() override;
  JsonSink(const JsonSink&) = delete;
  JsonSink& operator=(const JsonSink&) = delete;

  void start(const StartInfo& info) override;
  void connection(const Connection& conn, std::uint64_t ts_ns) override;
  void state_change(const Connection& conn, TcpState old_state, TcpState new_state,
                    std::uint64_t ns_in_old, bool ns_in_old_known, std::uint64_t ts_ns) override;
  void retransmit(const Connection& conn, TcpState state, std::uint32_t segs,
                  std::uint64_t ts_ns) override;
  void reset(const Connection& conn, ResetDirection direction, TcpState state,
             std::uint64_t ts_ns) override;
  void leak(const Connection& conn, const Leak& leak) override;
  void leak_resolved(const Connection& conn, const Leak& leak) override;
  void time_wait_pressure(const TimeWaitPressure& pressure) override;
  void stop(const StopInfo& info) override;
  void flush() override;

private:
  void common(const Connection& conn, std::uint64_t ts_ns, std::uint32_t pid, std::string_view comm,
              OwnerSource source);
  void common(const Connection& conn, std::uint64_t ts_ns);
  void address(JsonKey name, const IpAddress& address);
  void leak_record(std::string_view type, const Connection& conn, const Leak& leak);
  void count_rows(JsonKey name, const std::vector<CountRow>& rows);
  void end_record();
  void write_buffer();

  std::ostream& out_;
  WallClock clock_;
  JsonWriter writer_;
};

}  // namespace tcptrail
