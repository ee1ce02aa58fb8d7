// The only code that touches libbpf: open → configure → load → attach → poll, and the
// counters of what the kernel side could not deliver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "loader/ring_reader.hpp"
#include "tcptrail/decode.hpp"

struct tcptrail_bpf;

namespace tcptrail {

struct LoaderConfig {
  std::uint8_t family = 0;                   // 0 both, 4 or 6
  std::vector<std::uint32_t> cpus;           // online CPUs: each gets a ring buffer
  std::size_t ring_buffer_bytes = 8u << 20;  // per CPU, a power of two
  std::uint32_t wakeup_events = 2048;        // events per CPU that wake the collector early
  bool verbose = false;                      // libbpf's messages to stderr
};

class BpfTracer {
public:
  // Loads and attaches every program; throws TraceError naming what failed and why.
  BpfTracer(const LoaderConfig& config, RecordHandler& handler);
  ~BpfTracer();
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;

  // Waits up to timeout_ms for a wakeup, then hands every queued record to the handler.
  // Returns the count.
  std::size_t poll(int timeout_ms);
  // At the end: hands over every record queued now, without waiting.
  std::size_t drain();
  // Events the kernel side could not queue (a ring buffer full, a CPU without one) or that it
  // skipped (a program that fired again on a CPU where it was running).
  std::uint64_t lost_events() const;

private:
  struct SkelDeleter {
    void operator()(tcptrail_bpf* skel) const;
  };
  std::unique_ptr<tcptrail_bpf, SkelDeleter> skel_;
  std::vector<sys::UniqueFd> ring_fds_;  // one ring buffer map per online CPU
  std::unique_ptr<RingSet> rings_;
  RecordHandler& handler_;
};

}  // namespace tcptrail
