// `tcptrail leaks --json`: only the leak records (leak, leak_resolved and TIME_WAIT pressure)
// reach the wrapped sink; lifecycle, start and stop records do not.
#pragma once

#include "tcptrail/records.hpp"

namespace tcptrail {

class LeakRecordsOnly : public RecordSink {
public:
  explicit LeakRecordsOnly(RecordSink& inner) : inner_(inner) {}

  void start(const StartInfo&) override {}
  void connection(const Connection&, std::uint64_t) override {}
  void state_change(const Connection&, TcpState, TcpState, std::uint64_t, bool,
                    std::uint64_t) override {}
  void retransmit(const Connection&, TcpState, std::uint32_t, std::uint64_t) override {}
  void reset(const Connection&, ResetDirection, TcpState, std::uint64_t) override {}
  void leak(const Connection& conn, const Leak& leak) override { inner_.leak(conn, leak); }
  void leak_resolved(const Connection& conn, const Leak& leak) override {
    inner_.leak_resolved(conn, leak);
  }
  void time_wait_pressure(const TimeWaitPressure& pressure) override {
    inner_.time_wait_pressure(pressure);
  }
  void stop(const StopInfo&) override {}
  void flush() override { inner_.flush(); }

private:
  RecordSink& inner_;
};

}  // namespace tcptrail
