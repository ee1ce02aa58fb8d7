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
  static constexpr std::size_t kFlushBytes = std::size_t{64} * 1024;

  TextSink(std::ostream& out, WallClock clock, TextOptions options = {});
  ~TextSink() override;
  TextSink(const TextSink&) = delete;
  TextSink& operator=(const TextSink&) = delete;

  void write(const Record& record) override;
  void flush() override;

private:
  void put(const StartRecord& record);
  void put(const ConnectionRecord& record);
  void put(const StateRecord& record);
  void put(const RetransmitRecord& record);
  void put(const ResetRecord& record);
  void put(const LeakRecord& record);
  void put(const LeakResolvedRecord& record);
  void put(const TimeWaitPressureRecord& record);
  void put(const InterimRecord& record);
  void put(const StopRecord& record);
  void put(const StatsRecord& /*record*/) {}
  void clock_time(std::uint64_t ts_ns);
  void process(std::uint32_t pid, std::string_view comm);
  void endpoints(const Connection& conn);
  // Time, process, role and endpoints: how a row of the connections view starts.
  void connection_prefix(const Connection& conn, std::uint64_t ts_ns);
  void retransmit_view_prefix(const Connection& conn, TcpState state, std::uint64_t ts_ns);
  void open_leaks(const StopInfo& info);
  void leak_line(std::string_view marker, const Connection& conn, const Leak& leak);
  template <typename Row>
  void count_table(std::string_view title, const std::vector<Row>& rows,
                   std::string (*label)(const Row&));
  void end_line();
  void write_buffer();

  std::ostream& out_;
  WallClock clock_;
  TextOptions options_;
  std::string buffer_;
};

}  // namespace tcptrail
