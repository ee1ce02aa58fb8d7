// Everything tracing needs that can block (sweeps of the socket tables through sock_diag,
// entering other network namespaces, reading port ranges, scanning /proc for descriptor
// holders) runs on a thread of its own, so that the thread draining the ring buffers never
// waits for the kernel or the file system. Results travel back in batches that the ring thread
// takes without blocking.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "analyzers/interim_tracker.hpp"
#include "analyzers/leak_detector.hpp"
#include "system/fd_owners.hpp"

namespace tcptrail {

// Socket holders as one scan saw them: the descriptors in /proc and, for the sockets a leak is
// reported from (CLOSE_WAIT, FIN_WAIT2), their inodes by cookie.
struct HolderSnapshot {
  std::uint64_t ts_ns = 0;  // monotonic, when the scan began
  sys::FdOwnerIndex fd_index;
  std::unordered_map<std::uint64_t, std::uint32_t> inodes;  // cookies are unique across netns
};

struct ScanBatch {
  std::vector<SweepDigest> digests;
  std::shared_ptr<const HolderSnapshot> holders;  // the newest, when one was asked for
  std::vector<std::uint32_t> gone;                // namespaces that no longer exist
  std::vector<InterimDump> interim;               // with --interim, parts of dumps, oldest first
};

// Which namespaces a sweep walks, and which count their TIME_WAIT. Each walk reads the kernel's
// whole established hash, which all namespaces share (tens of milliseconds with 100k TIME_WAIT
// sockets), so a quiet namespace is walked in its slot only, one sweep in kEvery: one where
// nothing entered a leak state (the kernel tells, take_active_namespaces) and whose last walk
// found no socket in one, so that nothing in it can cross a leak threshold before the kernel
// tells. The slots spread the namespaces over the kEvery sweeps, so that namespaces found
// together are not walked together. Scanner thread only.
class NamespaceWalks {
public:
  static constexpr std::uint64_t kEvery = SweepDigest::kTimeWaitCountEvery;
  // Whether `netns` is walked in sweep number `sweep`; active: the kernel told of it.
  [[nodiscard]] bool due(std::uint32_t netns, std::uint64_t sweep, bool active) const;
  // Whether a walk of `netns` in `sweep` counts its TIME_WAIT: its first, then one in its slot.
  [[nodiscard]] bool counts_time_wait(std::uint32_t netns, std::uint64_t sweep) const;
  // suspects: the walk found a request socket, an orphaned FIN_WAIT2 one, or a socket in
  // CLOSE_WAIT or FIN_WAIT2.
  void walked(std::uint32_t netns, bool suspects) { suspects_[netns] = suspects; }
  void forget(std::uint32_t netns) { suspects_.erase(netns); }

private:
  static bool in_slot(std::uint32_t netns, std::uint64_t sweep) {
    return sweep % kEvery == netns % kEvery;
  }
  std::unordered_map<std::uint32_t, bool> suspects_;  // of each walked namespace's last walk
};

// The scanner thread. Sweeps run at a fixed cadence that does not stretch with load: a sweep
// that overruns its slot is followed by the next one at once. A holder scan, when asked for,
// comes with a sweep of its own right away. Failures are counted and retried, never raised.
class Scanner {
public:
  // live: where the sweeps look up the lifecycles of sockets in leak states, and interim dumps
  // those of open connections, and learn which quiet namespaces need a walk (nullptr: nowhere,
  // and every namespace is walked each sweep). interim_ns: the cadence of interim dumps of
  // every open connection, 0 for none.
  Scanner(std::uint32_t own_netns, std::uint64_t interval_ns, LiveConnections* live,
          std::uint64_t interim_ns = 0);
  ~Scanner();  // stops and joins the thread
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // From the ring thread; none of these waits for the scanner.
  // What the scanner produced since the last call, if anything and if it is not writing it
  // right now; `namespaces` (besides its own) are what the next sweeps cover.
  std::optional<ScanBatch> take(const std::vector<std::uint32_t>& namespaces);
  void request_holders();
  // Stops the thread; the counters are final afterwards.
  void stop();
  // sweeps, longest_sweep_interval_ns, longest_sweep_ns, sweep_ns and scan_errors of run.
  void add_stats(RunStats& run) const;

private:
  void run();
  // One sweep of every namespace; the inodes of sockets in leak states go to `inodes`. With
  // `interim`, the same dumps give its samples: the open connections, published in parts, each
  // waiting until the collector took the one before, so a collector slower than the dumps
  // holds the scanner back (and stretches the cadence) instead of piling dumps up.
  void sweep(ScanBatch& batch, std::unordered_map<std::uint64_t, std::uint32_t>& inodes,
             InterimDump* interim);
  // What the sweeps cover: the namespaces take() was last given, and the scanner's own.
  std::vector<std::uint32_t> swept_namespaces();
  void add_interim_samples(std::uint32_t netns, std::span<const SocketSnapshot> open,
                           InterimDump& dump);
  void publish_interim(InterimDump part);
  void publish(ScanBatch batch);

  const std::uint32_t own_netns_;
  const std::uint64_t interval_ns_;
  LiveConnections* const live_;
  const std::uint64_t interim_ns_;
  std::atomic<bool> holders_wanted_{false};
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;  // guards what follows; held only to move batches and lists
  std::condition_variable wake_;
  std::condition_variable taken_;  // the collector took interim parts
  std::vector<std::uint32_t> namespaces_;
  std::optional<ScanBatch> pending_;
  // Namespaces that failed with ENOENT once: a second failure reports them gone.
  std::vector<std::uint32_t> missing_;

  std::atomic<std::uint64_t> sweeps_{0};
  std::atomic<std::uint64_t> longest_interval_ns_{0};
  std::atomic<std::uint64_t> longest_sweep_ns_{0};
  std::atomic<std::uint64_t> sweep_ns_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::uint64_t last_sweep_start_ns_ = 0;  // scanner thread only
  // Scanner thread only: per namespace, the orphaned FIN_WAIT2 timewait socks its last sweep
  // found, to tell which of them the next one finds in TIME_WAIT.
  std::unordered_map<std::uint32_t, std::vector<SocketSnapshot>> fin_wait2_;
  NamespaceWalks walks_;  // scanner thread only

  std::thread thread_;  // last: started once everything above is built
};

// FdOwnerLookup over the newest HolderSnapshot: lookups are in memory; one that needs a newer
// scan asks the scanner for it.
class ScannedFdOwners : public FdOwnerLookup {
public:
  explicit ScannedFdOwners(std::function<void()> request_scan)
      : request_scan_(std::move(request_scan)) {}

  void install(std::shared_ptr<const HolderSnapshot> holders) { holders_ = std::move(holders); }
  bool fresh_since(std::uint64_t since_ns) override;
  std::vector<FdOwner> owners(std::uint32_t inode) override;
  std::uint32_t inode_of(std::uint64_t sock_cookie, std::uint32_t netns_ino) override;

private:
  std::function<void()> request_scan_;
  std::shared_ptr<const HolderSnapshot> holders_;
};

// The ephemeral port settings and name of a namespace. Throws std::system_error.
NamespacePorts namespace_ports(std::uint32_t netns);

// The descriptors in /proc as of now, on the calling thread: for the start, before the scanner
// runs. Throws std::system_error if /proc cannot be read.
std::shared_ptr<const HolderSnapshot>
scan_holders(std::uint64_t ts_ns, std::unordered_map<std::uint64_t, std::uint32_t> inodes = {});

}  // namespace tcptrail
