// NDJSON output: one JSON object per record and line. Field names, order and types are a
// contract with consumers (json_sink_test pins them); ids that may exceed 2^53 are strings,
// times are RFC 3339 UTC with nanoseconds, durations are milliseconds.
#pragma once

#include <ostream>
#include <string>

#include "sinks/json_writer.hpp"
#include "tcptrail/community_id.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

// Writes to the stream it is given, which must outlive it. Lines are buffered and reach the
// stream on flush(), when the buffer passes kFlushBytes, and on destruction.
class JsonSink : public RecordSink {
public:
  static constexpr std::size_t kFlushBytes = std::size_t{64} * 1024;

  // host: the machine's name, written in every record.
  JsonSink(std::ostream& out, WallClock clock, std::string host);
  ~JsonSink() override;
  JsonSink(const JsonSink&) = delete;
  JsonSink& operator=(const JsonSink&) = delete;

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
  void begin_record(std::string_view type);
  void common(const Connection& conn, std::uint64_t ts_ns, std::uint32_t pid, std::string_view comm,
              OwnerSource source, const Identity& identity);
  void common(const Connection& conn, std::uint64_t ts_ns, const Identity& identity);
  // conn_id through netns: who and where, in every record of a socket.
  void socket_fields(const Connection& conn, std::uint32_t pid, std::string_view comm,
                     OwnerSource source);
  // The text, or null when it is absent (a null pointer) or empty.
  void string_or_null(JsonKey name, const std::string* text);
  void address(JsonKey name, const IpAddress& address);
  void leak_record(std::string_view type, const Connection& conn, const Leak& leak,
                   const Identity& identity);
  void summary_counts(const SummaryCounts& counts);
  void end_record();
  void write_buffer();

  std::ostream& out_;
  WallClock clock_;
  std::string host_;
  JsonWriter writer_;
  CommunityIdCache community_ids_;
};

}  // namespace tcptrail
