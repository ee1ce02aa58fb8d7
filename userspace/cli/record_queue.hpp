// Ring records on their way from the thread that drains the ring buffers to the collector's
// thread. The ring thread only copies records into a chunk and hands full chunks over, so that
// decoding, the analyzers and the sinks (formatting, writing) never hold up the draining: the
// rings are emptied at their own pace however long a record takes to write out.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "tcptrail/decode.hpp"

namespace tcptrail {

class RecordQueue : public RecordHandler {
public:
  // max_bytes: what may wait for the collector; past it the ring thread stops draining and the
  // kernel counts what it cannot queue as lost.
  explicit RecordQueue(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // Ring thread. Appends a record to the chunk being filled.
  void on_record(std::span<const std::byte> bytes) override;
  // Ring thread. Hands the chunk being filled to the collector's thread.
  void publish();
  // Ring thread. Whether the collector is max_bytes behind.
  bool full();
  // Any thread. Bytes handed over and not yet consumed.
  std::size_t waiting_bytes();
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }
  // Ring thread, last: nothing more will come.
  void close();

  // Collector's thread. Waits up to `timeout` for a chunk, then hands each of its records to
  // handler. False once the queue is closed and empty.
  bool consume(RecordHandler& handler, std::chrono::milliseconds timeout);

private:
  // The collector takes chunks at its own pace (it waits with a timeout); it is woken early only
  // when this much is waiting. A wakeup per chunk made the woken thread preempt the ring
  // thread on a busy CPU: pauses of up to 6 ms in the storm.
  static constexpr std::size_t kWakeBytes = std::size_t{4} << 20;
  const std::size_t max_bytes_;
  std::vector<std::byte> filling_;  // the ring thread's: [u32 size][record]...
  std::mutex mutex_;                // guards what follows; held only to move chunks
  std::condition_variable ready_cv_;
  std::deque<std::vector<std::byte>> ready_;
  std::vector<std::vector<std::byte>> spare_;  // consumed chunks, for reuse
  std::size_t ready_bytes_ = 0;
  bool closed_ = false;
};

}  // namespace tcptrail
