// Human-readable output: aligned columns, one line per finished connection (the tcplife
// view), or per retransmit and reset (the tcpretrans view). Leaks are shown in every view.
#pragma once

#include <ostream>
#include <string>

#include "tcptrail/records.hpp"

namespace tcptrail {

struct TextOptions {
  bool transitions = false;       // also a line per state change
  bool retransmits_view = false;  // retransmits and resets instead of connections
  bool utc = false;               // times in UTC instead of the local time zone
};

// Writes to the stream it is given, which must outlive it. Lines are buffered and reach the
// stream on flush(), when the buffer passes kFlushBytes, and on destruction. Bytes of process
// names that are not printable ASCII are shown as \xNN, so no output byte can drive a terminal.
class TextSink : public RecordSink {
public:
  static constexpr std::size_t kFlushBytes = 64 * 1024;

  TextSink(std::ostream& out, WallClock clock, TextOptions options = {});
  ~TextSink() override;
  TextSink(const TextSink&) = delete;
  TextSink& operator=(const TextSink&) = delete;

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
  void clock_time(std::uint64_t ts_ns);
  void process(std::uint32_t pid, std::string_view comm);
  void endpoints(const Connection& conn);
  void retransmit_view_prefix(const Connection& conn, TcpState state, std::uint64_t ts_ns);
  void leak_line(std::string_view marker, const Connection& conn, const Leak& leak);
  void count_table(std::string_view title, const std::vector<CountRow>& rows);
  void end_line();
  void write_buffer();

  std::ostream& out_;
  WallClock clock_;
  TextOptions options_;
  std::string buffer_;
};

}  // namespace tcptrail
