// Several sinks at once: NDJSON to a file and metrics, say.
#pragma once

#include <vector>

#include "tcptrail/records.hpp"

namespace tcptrail {

// Hands every record and flush to each of its sinks, in the order given. The sinks must
// outlive it.
class TeeSink : public RecordSink {
public:
  explicit TeeSink(std::vector<RecordSink*> sinks) : sinks_(std::move(sinks)) {}
  void write(const Record& record) override {
    for (RecordSink* sink : sinks_) {
      sink->write(record);
    }
  }
  void flush() override {
    for (RecordSink* sink : sinks_) {
      sink->flush();
    }
  }

private:
  std::vector<RecordSink*> sinks_;
};

}  // namespace tcptrail
