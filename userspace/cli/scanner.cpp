#include "cli/scanner.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>

#include "system/netns.hpp"
#include "system/port_range.hpp"
#include "system/socket_table.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

namespace {

// How long the scanner sleeps at most between looks at a request for holders.
constexpr std::uint64_t kRequestPollNs = 100'000'000;
// Open connections per part of an interim dump: ~1.3 MB of samples in flight at most.
constexpr std::size_t kInterimPartSamples = 4096;
// Exact lookups of orphans that left FIN_WAIT2 a sweep makes at most (~5 us each) before it
// dumps TIME_WAIT instead (tens of milliseconds on a busy host).
constexpr std::size_t kMaxFinWait2Lookups = 1024;

void raise_max(std::atomic<std::uint64_t>& max, std::uint64_t value) {
  std::uint64_t seen = max.load(std::memory_order_relaxed);
  while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

bool is_leak_state(TcpState state) {
  return state == TcpState::kCloseWait || state == TcpState::kFinWait2;
}

// An orphaned FIN_WAIT2 timewait sock of the last sweep that left FIN_WAIT2 went on to
// TIME_WAIT (the peer's FIN came) or is gone; only a look at TIME_WAIT tells which. For a sweep
// whose dump left TIME_WAIT out, appends to `sockets` those that are TIME_WAIT now: each looked
// up on its own, unless so many left that a dump of TIME_WAIT alone is cheaper. Returns whether
// it dumped TIME_WAIT.
bool follow_fin_wait2(std::uint32_t netns, const std::vector<SocketSnapshot>& fin_wait2_before,
                      std::vector<SocketSnapshot>& sockets) {
  if (fin_wait2_before.empty()) {
    return false;
  }
  std::unordered_set<std::uint64_t> still;
  for (const SocketSnapshot& s : sockets) {
    if (s.kind == SnapshotKind::kTimeWait && s.state == TcpState::kFinWait2) {
      still.insert(s.cookie);
    }
  }
  std::vector<SocketSnapshot> left;
  std::copy_if(fin_wait2_before.begin(), fin_wait2_before.end(), std::back_inserter(left),
               [&still](const SocketSnapshot& s) { return !still.contains(s.cookie); });
  const bool dump = left.size() > kMaxFinWait2Lookups;
  const std::vector<SocketSnapshot> now =
      dump ? sys::snapshot_sockets(netns, sys::SocketSet::kTimeWait)
           : sys::find_sockets(netns, left);
  sockets.insert(sockets.end(), now.begin(), now.end());
  return dump;
}

}  // namespace

NamespacePorts namespace_ports(std::uint32_t netns) {
  const sys::PortSettings settings = sys::read_port_settings(netns);
  return {settings.range.lo, settings.range.hi,      settings.range.size(),
          settings.tw_reuse, sys::netns_name(netns), settings.tw_reuse_delay_ms};
}

std::shared_ptr<const HolderSnapshot>
scan_holders(std::uint64_t ts_ns, std::unordered_map<std::uint64_t, std::uint32_t> inodes) {
  auto holders = std::make_shared<HolderSnapshot>();
  holders->ts_ns = ts_ns;
  holders->fd_index = sys::FdOwnerIndex::scan();
  holders->inodes = std::move(inodes);
  return holders;
}

bool NamespaceWalks::due(std::uint32_t netns, std::uint64_t sweep, bool active) const {
  auto it = suspects_.find(netns);
  return it == suspects_.end() || active || it->second || in_slot(netns, sweep);
}

bool NamespaceWalks::counts_time_wait(std::uint32_t netns, std::uint64_t sweep) const {
  return !suspects_.contains(netns) || in_slot(netns, sweep);
}

Scanner::Scanner(std::uint32_t own_netns, std::uint64_t interval_ns, LiveConnections* live,
                 std::uint64_t interim_ns)
    : own_netns_(own_netns), interval_ns_(interval_ns), live_(live), interim_ns_(interim_ns),
      thread_([this] { run(); }) {}

Scanner::~Scanner() {
  stop();
}

void Scanner::stop() {
  stopping_.store(true);
  wake_.notify_all();
  taken_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::optional<ScanBatch> Scanner::take(const std::vector<std::uint32_t>& namespaces) {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock) {
    return std::nullopt;  // the scanner is handing over a batch: take it next time
  }
  if (namespaces != namespaces_) {
    namespaces_ = namespaces;
  }
  std::optional<ScanBatch> batch = std::move(pending_);
  pending_.reset();
  if (batch && !batch->interim.empty()) {
    taken_.notify_one();
  }
  return batch;
}

void Scanner::request_holders() {
  if (!holders_wanted_.exchange(true)) {
    wake_.notify_one();
  }
}

void Scanner::add_stats(RunStats& run) const {
  run.sweeps = sweeps_.load();
  run.longest_sweep_interval_ns = longest_interval_ns_.load();
  run.longest_sweep_ns = longest_sweep_ns_.load();
  run.sweep_ns = sweep_ns_.load();
  run.scan_errors = errors_.load();
}

void Scanner::publish(ScanBatch batch) {
  std::lock_guard lock(mutex_);
  if (!pending_) {
    pending_ = std::move(batch);
    return;
  }
  // The ring thread has not taken the last batch yet: both travel together.
  std::move(batch.digests.begin(), batch.digests.end(), std::back_inserter(pending_->digests));
  std::move(batch.gone.begin(), batch.gone.end(), std::back_inserter(pending_->gone));
  std::move(batch.interim.begin(), batch.interim.end(), std::back_inserter(pending_->interim));
  if (batch.holders) {
    pending_->holders = std::move(batch.holders);
  }
}

std::vector<std::uint32_t> Scanner::swept_namespaces() {
  std::vector<std::uint32_t> namespaces;
  {
    std::lock_guard lock(mutex_);
    namespaces = namespaces_;
  }
  if (std::find(namespaces.begin(), namespaces.end(), own_netns_) == namespaces.end()) {
    namespaces.push_back(own_netns_);
  }
  return namespaces;
}

void Scanner::publish_interim(InterimDump part) {
  std::unique_lock lock(mutex_);
  // One part in flight at a time, however far behind the collector is: what waits does not
  // grow with the connections open.
  while (!stopping_.load() && pending_ && !pending_->interim.empty()) {
    taken_.wait_for(lock, std::chrono::nanoseconds(kRequestPollNs));
  }
  if (!pending_) {
    pending_.emplace();
  }
  pending_->interim.push_back(std::move(part));
}

void Scanner::add_interim_samples(std::uint32_t netns, std::span<const SocketSnapshot> open,
                                  InterimDump& dump) {
  for (const SocketSnapshot& s : open) {
    // Not followed by the kernel (born while its table was full): counted as overflow.
    std::optional<Connection> conn = live_ != nullptr ? live_->find(s.cookie) : std::nullopt;
    if (!conn) {
      continue;
    }
    conn->laddr = s.laddr;
    conn->raddr = s.raddr;
    conn->lport = s.lport;
    conn->rport = s.rport;
    conn->netns_ino = netns;
    dump.samples.push_back({*conn, s});
    if (dump.samples.size() == kInterimPartSamples) {
      InterimDump part{dump.ts_ns, std::move(dump.samples), false};
      publish_interim(std::move(part));
      dump.samples = {};
      dump.samples.reserve(kInterimPartSamples);
    }
  }
}

void Scanner::sweep(ScanBatch& batch, std::unordered_map<std::uint64_t, std::uint32_t>& inodes,
                    InterimDump* interim) {
  const std::vector<std::uint32_t> namespaces = swept_namespaces();
  const std::uint64_t start = monotonic_ns();
  if (last_sweep_start_ns_ != 0) {
    raise_max(longest_interval_ns_, start - last_sweep_start_ns_);
  }
  last_sweep_start_ns_ = start;
  // Taken before the walks: what enters a leak state during them is told to the next sweep.
  const std::optional<std::vector<std::uint32_t>> active =
      live_ != nullptr ? live_->take_active_namespaces() : std::nullopt;
  const std::uint64_t sweep_number = sweeps_.load();
  for (const std::uint32_t netns : namespaces) {
    // An interim dump wants every namespace's open connections.
    if (interim == nullptr && active &&
        !walks_.due(netns, sweep_number, std::ranges::find(*active, netns) != active->end())) {
      continue;
    }
    try {
      const std::uint64_t read_ns = monotonic_ns();
      bool count_time_wait = walks_.counts_time_wait(netns, sweep_number);
      sys::TableSnapshot table = sys::snapshot_table(
          netns,
          count_time_wait ? sys::SocketSet::kLeakStatesAndTimeWait : sys::SocketSet::kLeakStates,
          interim != nullptr);
      if (interim != nullptr) {
        add_interim_samples(netns, table.open_connections, *interim);
      }
      std::vector<SocketSnapshot>& sockets = table.sockets;
      std::vector<SocketSnapshot>& fin_wait2_before = fin_wait2_[netns];
      if (!count_time_wait) {
        count_time_wait = follow_fin_wait2(netns, fin_wait2_before, sockets);
      }
      std::unordered_set<std::uint64_t> fin_wait2_cookies_before;
      for (const SocketSnapshot& s : fin_wait2_before) {
        fin_wait2_cookies_before.insert(s.cookie);
      }
      std::vector<SocketSnapshot> fin_wait2;
      for (const SocketSnapshot& s : sockets) {
        if (s.kind == SnapshotKind::kFull && s.inode != 0 && is_leak_state(s.state)) {
          inodes.emplace(s.cookie, s.inode);
        }
        if (s.kind == SnapshotKind::kTimeWait && s.state == TcpState::kFinWait2) {
          fin_wait2.push_back(s);
        }
      }
      NamespacePorts ports = namespace_ports(netns);
      batch.digests.push_back(
          digest_sweep(netns, sockets, std::move(ports), read_ns, live_, fin_wait2_cookies_before));
      batch.digests.back().time_wait_counted = count_time_wait;
      walks_.walked(netns,
                    !batch.digests.back().minisocks.empty() || !batch.digests.back().held.empty());
      fin_wait2_before = std::move(fin_wait2);
      // It was there after all: the sweep it missed was a failure.
      if (std::erase(missing_, netns) != 0) {
        errors_.fetch_add(1);
      }
    } catch (const std::system_error& e) {
      // Gone when nothing refers to it any more, twice in a row (not a process caught exiting);
      // a namespace that went away is no failure, one that was missed once is (above).
      if (e.code().value() == ENOENT && netns != own_netns_) {
        if (std::find(missing_.begin(), missing_.end(), netns) != missing_.end()) {
          std::erase(missing_, netns);
          fin_wait2_.erase(netns);
          walks_.forget(netns);
          batch.gone.push_back(netns);
        } else {
          missing_.push_back(netns);
        }
      } else {
        errors_.fetch_add(1);
      }
    }
  }
  const std::uint64_t took = monotonic_ns() - start;
  sweep_ns_.fetch_add(took);
  sweeps_.fetch_add(1);
  raise_max(longest_sweep_ns_, took);
}

void Scanner::run() {
  // Signals are for the ring thread, whose wait they must interrupt.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::uint64_t next_sweep = monotonic_ns();
  std::uint64_t next_interim = interim_ns_ != 0 ? next_sweep + interim_ns_ : UINT64_MAX;
  while (!stopping_.load()) {
    const std::uint64_t now = monotonic_ns();
    const bool holders = holders_wanted_.exchange(false);
    // An interim dump rides on a sweep, early if need be: each dump walks the kernel's whole
    // table, so one walk serves both.
    const bool interim = now >= next_interim;
    if (now >= next_sweep || holders || interim) {
      ScanBatch batch;
      std::unordered_map<std::uint64_t, std::uint32_t> inodes;
      const std::uint64_t started = monotonic_ns();
      std::optional<InterimDump> dump;
      if (interim) {
        dump.emplace();
        dump->ts_ns = started;
        dump->samples.reserve(kInterimPartSamples);
      }
      sweep(batch, inodes, dump ? &*dump : nullptr);
      if (dump && !stopping_.load()) {
        publish_interim(std::move(*dump));
      }
      if (holders) {
        // What a scan missed is counted; the lookup asks again when it needs newer holders.
        try {
          batch.holders = scan_holders(started, std::move(inodes));
          errors_.fetch_add(batch.holders->fd_index.skipped());
        } catch (const std::system_error&) {
          errors_.fetch_add(1);
        }
      }
      publish(std::move(batch));
      if (now >= next_sweep || interim) {
        // A fixed cadence: an overrun is not made up for with a burst of sweeps.
        next_sweep = std::max(std::min(next_sweep, now) + interval_ns_, monotonic_ns());
      }
      if (interim) {
        next_interim = std::max(next_interim + interim_ns_, monotonic_ns());
      }
      continue;
    }
    std::unique_lock lock(mutex_);
    const std::uint64_t wait_ns = std::min({next_sweep - now, next_interim - now, kRequestPollNs});
    wake_.wait_for(lock, std::chrono::nanoseconds(wait_ns),
                   [this] { return stopping_.load() || holders_wanted_.load(); });
  }
}

bool ScannedFdOwners::fresh_since(std::uint64_t since_ns) {
  if (holders_ && holders_->ts_ns >= since_ns) {
    return true;
  }
  request_scan_();
  return false;
}

std::vector<FdOwner> ScannedFdOwners::owners(std::uint32_t inode) {
  const std::vector<FdOwner>* found = holders_ ? holders_->fd_index.find(inode) : nullptr;
  return found != nullptr ? *found : std::vector<FdOwner>{};
}

std::uint32_t ScannedFdOwners::inode_of(std::uint64_t sock_cookie, std::uint32_t /*netns_ino*/) {
  if (!holders_) {
    return 0;
  }
  auto found = holders_->inodes.find(sock_cookie);
  return found != holders_->inodes.end() ? found->second : 0;
}

}  // namespace tcptrail
