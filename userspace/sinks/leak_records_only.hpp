// `tcptrail leaks --json`: only the leak records (leak, leak_resolved and TIME_WAIT pressure)
// reach the wrapped sink; lifecycle, start and stop records do not.
#pragma once

#include "tcptrail/records.hpp"

namespace tcptrail {

class LeakRecordsOnly : public RecordSink {
public:
  explicit LeakRecordsOnly(RecordSink& inner) : inner_(inner) {}

  void write(const Record& record) override {
    if (std::holds_alternative<LeakRecord>(record) ||
        std::holds_alternative<LeakResolvedRecord>(record) ||
        std::holds_alternative<TimeWaitPressureRecord>(record)) {
      inner_.write(record);
    }
  }
  void flush() override { inner_.flush(); }

private:
  RecordSink& inner_;
};

}  // namespace tcptrail
