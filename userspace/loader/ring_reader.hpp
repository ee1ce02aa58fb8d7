// Reading BPF ring buffers through their own mappings instead of libbpf's ring_buffer, and
// merging one ring per CPU back into one stream in timestamp order.
//
// Why not libbpf: with one ring shared by all CPUs, every bpf_ringbuf_reserve() took the same
// lock and wrote the same producer position, bouncing their cache lines between CPUs (measured
// on 2 CPUs: ~190 of ~320 ns per reserve and commit). A ring per CPU keeps them local, and the
// merge needs to look at each ring's next record before taking it, which libbpf 1.1's callback
// API cannot do. It also publishes the consumer position after every record; this publishes it
// once per batch.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "system/unique_fd.hpp"
#include "tcptrail/decode.hpp"

namespace tcptrail {

// One ring's consumer side, over the kernel's layout: the consumer position, the producer
// position, and the data area mapped twice in a row so that a record wrapping the end reads
// as one piece.
class RingReader {
public:
  struct Layout {
    std::uint64_t* consumer_pos;
    const std::uint64_t* producer_pos;
    const std::byte* data;
    std::size_t data_bytes;  // a power of two
  };
  enum class Next { kRecord, kEmpty, kBusy };

  explicit RingReader(const Layout& layout) : ring_(layout), consumer_(*layout.consumer_pos) {}

  // Reads how far the kernel has written: peek() sees no further until the next call.
  void snapshot() { producer_ = __atomic_load_n(ring_.producer_pos, __ATOMIC_ACQUIRE); }
  // Looks at the next record without taking it. kEmpty: nothing before the snapshot is left.
  // kBusy: reserved but not yet committed, so the records after it wait too.
  Next peek(std::span<const std::byte>& record);
  // Moves past the record peek() returned.
  void pop() { consumer_ += record_step_; }
  // Lets the kernel reuse what was popped.
  // NOLINTNEXTLINE(readability-make-member-function-const): writes the ring's consumer position
  void publish() { __atomic_store_n(ring_.consumer_pos, consumer_, __ATOMIC_RELEASE); }
  // The share of the ring holding records not yet taken, as of the last snapshot.
  [[nodiscard]] double fill() const {
    return static_cast<double>(producer_ - consumer_) / static_cast<double>(ring_.data_bytes);
  }

private:
  Layout ring_;
  std::uint64_t consumer_;
  std::uint64_t producer_ = 0;  // producer position at the last snapshot
  std::uint64_t record_step_ = 0;
};

// Merges per-CPU rings into one stream ordered by each record's leading 64-bit timestamp.
//
// A record is handed over only when no ring can still produce an older one. Each call takes
// the time t, then snapshots every ring. Whatever a ring receives after its snapshot is stamped
// after t: the BPF side stamps a record after reserving it. So once a ring is read up to its
// snapshot, records up to t can be released from the others; records stamped later wait for
// the next call. A ring stuck on a record still being written holds everything back to the last
// time it was read to the end.
class RingMerge {
public:
  using Clock = std::function<std::uint64_t()>;  // CLOCK_MONOTONIC ns, as bpf_ktime_get_ns()

  RingMerge(std::vector<RingReader> rings, Clock clock);

  // Hands over every record that can be ordered now; returns the count.
  std::size_t consume(RecordHandler& handler);
  // At the end: hands over everything visible, in timestamp order, with nothing to wait for.
  std::size_t consume_all(RecordHandler& handler);
  // Any thread. The fullest any ring was when a consume call came to it since the last call
  // (0 to 1): how close the kernel came to losing records for want of space.
  double take_peak_fill() { return peak_fill_.exchange(0, std::memory_order_relaxed); }

private:
  struct Head {
    std::uint64_t ts_ns;
    std::size_t ring;
    std::span<const std::byte> record;
  };
  // Peeks ring i: true with its next record in head, or false after noting how far it is read.
  bool next(std::size_t i, std::uint64_t horizon, Head& head);
  void push(const Head& head);
  std::size_t run(RecordHandler& handler, bool ordered);

  std::vector<RingReader> rings_;
  Clock clock_;
  std::vector<std::uint64_t> read_up_to_;  // per ring: no record to come is stamped before this
  std::vector<Head> heads_;  // a min-heap on ts_ns: one per ring with a visible record
  std::uint64_t bound_ = 0;  // min of read_up_to_ over the rings without a head
  std::atomic<double> peak_fill_{0};
};

// The BPF ring buffer maps, one per CPU, mapped and merged; waits on all of them at once.
class RingSet {
public:
  // data_bytes: each map's max_entries. Throws TraceError on failure.
  RingSet(const std::vector<int>& map_fds, std::size_t data_bytes);

  // Waits up to timeout_ms for any ring's wakeup. False on timeout or a signal.
  bool wait(int timeout_ms);
  std::size_t consume(RecordHandler& handler) { return merge_->consume(handler); }
  std::size_t consume_all(RecordHandler& handler) { return merge_->consume_all(handler); }
  double take_peak_fill() { return merge_->take_peak_fill(); }

private:
  // One mmap() of a map, unmapped on destruction.
  class Mapping {
  public:
    Mapping(int fd, std::size_t offset, std::size_t bytes, int protection);
    Mapping(Mapping&& other) noexcept;
    Mapping& operator=(Mapping&&) = delete;
    ~Mapping();
    [[nodiscard]] std::byte* get() const { return static_cast<std::byte*>(address_); }

  private:
    void* address_;
    std::size_t bytes_;
  };
  std::vector<Mapping> mappings_;
  std::unique_ptr<RingMerge> merge_;
  sys::UniqueFd epoll_fd_;
};

}  // namespace tcptrail
