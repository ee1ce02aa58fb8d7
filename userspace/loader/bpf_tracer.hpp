// The only code that touches libbpf: open → configure → load → attach → poll, and the
// counters of what the kernel side could not deliver.
#pragma once

#include <linux/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loader/ring_reader.hpp"
#include "tcptrail/decode.hpp"
#include "tcptrail/live_connections.hpp"
#include "tcptrail/records.hpp"

struct tcptrail_bpf;
struct tcptrail_held;

namespace tcptrail {

struct LoaderConfig {
  std::uint8_t family = 0;                   // 0 both, 4 or 6
  std::vector<std::uint32_t> cpus;           // online CPUs: each gets a ring buffer
  std::size_t ring_buffer_bytes = 8u << 20;  // per CPU, a power of two
  std::uint32_t wakeup_events = 2048;        // events per CPU that wake the collector early
  std::uint32_t max_connections = 1 << 20;   // lifecycles the kernel folds at once
  bool transitions = false;                  // a record per state change
  bool verbose = false;                      // libbpf's messages to stderr
};

// The kernel's `conns`, `listeners` and `netns_active` maps, and its conn_id counter.
class KernelConnections : public LiveConnections {
public:
  KernelConnections(int conns_fd, int listeners_fd, __u64* last_conn_id, int netns_active_fd,
                    __u32* active_gen)
      : conns_fd_(conns_fd), listeners_fd_(listeners_fd), last_conn_id_(last_conn_id),
        netns_active_fd_(netns_active_fd), active_gen_(active_gen) {}
  Seeded seed(Connection& conn) override;
  void seed_listener(std::uint32_t netns_ino, std::uint16_t port, const Owner& owner) override;
  [[nodiscard]] std::optional<Connection> find(std::uint64_t sock_cookie) const override;
  [[nodiscard]] std::size_t open() const override;
  [[nodiscard]] std::optional<std::vector<std::uint32_t>> take_active_namespaces() override;

private:
  int conns_fd_;
  int listeners_fd_;
  __u64* last_conn_id_;  // in the mmapped .bss, shared with the programs
  int netns_active_fd_;
  __u32* active_gen_;  // in the .bss too
};

class BpfTracer {
public:
  // Loads and attaches every program; throws TraceError naming what failed and why.
  explicit BpfTracer(const LoaderConfig& config);
  ~BpfTracer();
  BpfTracer(const BpfTracer&) = delete;
  BpfTracer& operator=(const BpfTracer&) = delete;

  // Waits up to timeout_ms for a wakeup, then hands every queued record to the handler.
  // Returns the count. Connection records staged in the kernel arrive within
  // kStagedFlushInterval of the call that follows their CLOSE by that much.
  std::size_t poll(RecordHandler& handler, int timeout_ms);
  // At the end: hands over every record queued now, staged and held ones included, without
  // waiting.
  std::size_t drain(RecordHandler& handler);
  static constexpr std::chrono::milliseconds kStagedFlushInterval{50};
  // A record held in the kernel for its holder's close() (the `held` map) goes as it is once it
  // has waited this long: a worker that has not got to a reset socket in a second may never.
  static constexpr std::chrono::seconds kHeldRecordWait{1};
  // Sets run's lost counts: the records the kernel side could not queue (a ring buffer full, a
  // CPU without one) or that it skipped (a program that fired again on a CPU where it was
  // running), by reason and in all, and the connection records among them; and its overflow,
  // the sockets born while the kernel's table was full.
  void count_lost(RunStats& run) const;
  // Any thread. The fullest a CPU's ring buffer was found when drained since the last call
  // (0 to 1).
  double take_ring_peak_fill() { return rings_->take_peak_fill(); }
  LiveConnections& connections() { return *connections_; }
  // What this kernel cannot give, found at load: a feature name (for the start record's
  // `degraded`) and why.
  struct MissingFeature {
    std::string name;
    std::string why;
  };
  [[nodiscard]] const std::vector<MissingFeature>& missing_features() const { return missing_; }

private:
  struct SkelDeleter {
    void operator()(tcptrail_bpf* skel) const;
  };
  std::unique_ptr<tcptrail_bpf, SkelDeleter> skel_;
  std::vector<sys::UniqueFd> ring_fds_;  // one ring buffer map per online CPU
  std::unique_ptr<RingSet> rings_;
  std::unique_ptr<KernelConnections> connections_;
  std::vector<MissingFeature> missing_;
  std::vector<std::uint32_t> cpus_;  // the CPUs with a ring
  std::chrono::steady_clock::time_point last_flush_{};
  std::chrono::steady_clock::time_point last_held_release_{};
  [[nodiscard]] std::uint64_t drops(std::uint32_t index) const;
  // Makes every CPU send the connection records it staged; the errno of the first CPU that
  // could not be told, or 0.
  int flush_staged();
  // Hands the handler the records in `held` that have waited at least `wait`; each goes once,
  // taken by whichever of this and the kernel deletes it first. Reads `batches` batches of
  // kHeldBatch entries at the most, going on from where the last call stopped.
  std::size_t release_held(RecordHandler& handler, std::chrono::nanoseconds wait,
                           std::size_t batches);
  // One system call reads a batch (BPF_MAP_LOOKUP_BATCH); a poll reads one, so that a full map
  // (4096) does not hold the ring thread long, and goes through it in 16 polls.
  static constexpr std::size_t kHeldBatch = 256;
  std::optional<__u32> held_batch_;  // where the last batch ended (a bucket of the hash)
  std::vector<__u64> held_keys_;
  std::vector<tcptrail_held> held_values_;
  bool offline_stage_warned_ = false;
};

}  // namespace tcptrail
