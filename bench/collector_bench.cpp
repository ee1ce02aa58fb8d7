// The collector alone, without a kernel: recorded ring-buffer records replayed in memory
// through decoder, connection table, analyzers and the JSON writer into a sink that discards
// its bytes; and the collector's memory per live connection. See bench/README.md.
//
//   tcptrail_collector_bench [--dump FILE] [google benchmark flags]
//
// --dump FILE writes the NDJSON of one replay (without, then with --transitions) to FILE and
// exits, to check that a change leaves the output byte-identical.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <span>
#include <streambuf>
#include <string>
#include <string_view>
#include <vector>

#include "sinks/json_sink.hpp"
#include "tcptrail/collector.hpp"
#include "tcptrail/events.h"

namespace tcptrail {
namespace {

constexpr std::uint64_t kUs = 1'000;
constexpr std::uint64_t kMs = 1'000'000;
// The trace loop ticks the collector after every poll and flushes the sink every 100 ms;
// under a storm a poll returns a batch at least every 50 ms.
constexpr std::uint64_t kTickNs = 50 * kMs;
constexpr std::uint64_t kFlushNs = 100 * kMs;
constexpr WallClock kClock{1'795'313'269'000'000'000};
constexpr std::uint32_t kNetns = 4026531840u;

// Counts and discards what is written: the sink's cost without the file system's.
class NullBuffer : public std::streambuf {
public:
  std::uint64_t bytes() const { return bytes_; }

protected:
  std::streamsize xsputn(const char* /*text*/, std::streamsize n) override {
    bytes_ += static_cast<std::uint64_t>(n);
    return n;
  }
  int_type overflow(int_type c) override {
    ++bytes_;
    return traits_type::not_eof(c);
  }

private:
  std::uint64_t bytes_ = 0;
};

class NoFdOwners : public FdOwnerLookup {
public:
  bool fresh_since(std::uint64_t /*since_ns*/) override { return true; }
  std::vector<FdOwner> owners(std::uint32_t /*inode*/) override { return {}; }
  std::uint32_t inode_of(std::uint64_t /*sock_cookie*/, std::uint32_t /*netns_ino*/) override {
    return 0;
  }
};

constexpr std::uint32_t kPid = 2001;
constexpr std::uint16_t kServerPort = 8080;

tcptrail_event loopback_event(std::uint64_t sock_cookie) {
  tcptrail_event e;
  std::memset(&e, 0, sizeof(e));
  e.kind = TCPTRAIL_EV_STATE;
  e.family = 4;
  e.sock_cookie = sock_cookie;
  e.netns_ino = kNetns;
  const std::uint8_t loopback[4] = {127, 0, 0, 1};
  std::memcpy(e.saddr, loopback, 4);
  std::memcpy(e.daddr, loopback, 4);
  return e;
}

// A transition as BPF reports it. Only a system call's transition names the owner; the
// socket's inode comes with entering CLOSE_WAIT or FIN_WAIT2.
tcptrail_event transition(tcptrail_event e, std::uint64_t ts_ns, TcpState from, TcpState to,
                          bool syscall = false) {
  e.ts_ns = ts_ns;
  e.old_state = static_cast<std::uint8_t>(from);
  e.new_state = static_cast<std::uint8_t>(to);
  if (syscall) {
    e.owner_pid = kPid;
    e.owner_source = TCPTRAIL_OWNER_SYSCALL;
    std::memcpy(e.owner_comm, "storm", 5);
  }
  if (to == TcpState::kCloseWait || to == TcpState::kFinWait2) {
    e.sock_ino = static_cast<std::uint32_t>(100000 + e.sock_cookie);
  }
  return e;
}

// What the ring buffer delivers for a loopback storm: a listener, then `pairs` connections, a
// new one every 33 us (30k/s), each open for 0.1..100 ms, so ~1,500 are open at once (3,000
// sockets plus those held for the close grace). Both ends, in the order the kernel reports
// them: the client's connect() (SYN_SENT) and ESTABLISHED, then the server child, first seen
// leaving SYN_RECV on the final ACK; the client closes first. 9 records per connection,
// sorted by time.
std::vector<tcptrail_event> storm_records(std::size_t pairs) {
  using S = TcpState;
  std::mt19937_64 random(5);
  std::uniform_int_distribution<std::uint64_t> open_ns(100 * kUs, 100 * kMs);
  std::uniform_int_distribution<std::uint64_t> jitter_ns(1 * kUs, 20 * kUs);
  std::vector<tcptrail_event> records;
  records.reserve(1 + pairs * 9);
  const std::uint64_t start = 1'000 * kMs;
  tcptrail_event listener = loopback_event(1);
  listener.sport = kServerPort;
  std::memset(listener.daddr, 0, sizeof(listener.daddr));
  records.push_back(transition(listener, start - kMs, S::kClose, S::kListen, true));
  for (std::size_t i = 0; i < pairs; ++i) {
    const auto client_port = static_cast<std::uint16_t>(32768 + i % 28232);
    tcptrail_event client = loopback_event(2 * i + 2);
    client.sport = client_port;
    client.dport = kServerPort;
    client.srtt_us = 20;
    tcptrail_event child = loopback_event(2 * i + 3);
    child.sport = kServerPort;
    child.dport = client_port;
    child.srtt_us = 15;

    std::uint64_t t = start + i * 33 * kUs;
    records.push_back(transition(client, t, S::kClose, S::kSynSent, true));
    records.push_back(transition(client, t += jitter_ns(random), S::kSynSent, S::kEstablished));
    records.push_back(transition(child, t += jitter_ns(random), S::kSynRecv, S::kEstablished));
    t += open_ns(random);
    client.bytes_acked = child.bytes_received = 1000 + i % 5000;
    child.bytes_acked = client.bytes_received = 2000 + i % 7000;
    records.push_back(transition(client, t, S::kEstablished, S::kFinWait1, true));
    client.flags = TCPTRAIL_F_ORPHAN;
    records.push_back(transition(child, t += jitter_ns(random), S::kEstablished, S::kCloseWait));
    records.push_back(transition(client, t += 1 * kUs, S::kFinWait1, S::kFinWait2));
    records.push_back(transition(child, t += jitter_ns(random), S::kCloseWait, S::kLastAck, true));
    child.flags = TCPTRAIL_F_ORPHAN;
    records.push_back(transition(client, t += jitter_ns(random), S::kFinWait2, S::kClose));
    records.push_back(transition(child, t + 1 * kUs, S::kLastAck, S::kClose));
  }
  std::stable_sort(
      records.begin(), records.end(),
      [](const tcptrail_event& a, const tcptrail_event& b) { return a.ts_ns < b.ts_ns; });
  return records;
}

const std::vector<tcptrail_event>& storm() {
  static const std::vector<tcptrail_event> records = storm_records(100'000);
  return records;
}

// One replay as the trace loop would do it: records in, tick and flush by event time.
void replay(const std::vector<tcptrail_event>& records, bool transitions, std::ostream& out) {
  CollectorConfig config;
  config.transitions = transitions;
  NoFdOwners fd_owners;
  JsonSink sink(out, kClock);
  Collector collector(config, sink, fd_owners);
  std::uint64_t next_tick = records.front().ts_ns + kTickNs;
  std::uint64_t next_flush = records.front().ts_ns + kFlushNs;
  for (const tcptrail_event& record : records) {
    if (record.ts_ns >= next_tick) {
      collector.tick(record.ts_ns);
      next_tick = record.ts_ns + kTickNs;
      if (record.ts_ns >= next_flush) {
        sink.flush();
        next_flush = record.ts_ns + kFlushNs;
      }
    }
    collector.on_record(std::as_bytes(std::span(&record, 1)));
  }
  collector.finish(records.back().ts_ns + kTickNs, RunStats{});
}

void BM_CollectorReplay(benchmark::State& state) {
  const bool transitions = state.range(0) != 0;
  const std::vector<tcptrail_event>& records = storm();
  NullBuffer buffer;
  std::ostream out(&buffer);
  for (auto _ : state) {
    replay(records, transitions, out);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(records.size()));
  state.SetBytesProcessed(static_cast<std::int64_t>(buffer.bytes()));
  state.SetLabel(transitions ? "--json --transitions" : "--json");
}
BENCHMARK(BM_CollectorReplay)
    ->ArgName("transitions")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

std::uint64_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

std::uint64_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return 0;
}

// N sockets opened and never closed: half clients (SYN_SENT, ESTABLISHED), half server
// children (SYN_RECV, ESTABLISHED); or, with clients_only, N client births (SYN_SENT). Past
// the table's default max_connections (2^20) the rest must be counted as overflow.
void BM_LiveConnectionMemory(benchmark::State& state) {
  const auto sockets = static_cast<std::uint64_t>(state.range(0));
  const bool clients_only = state.range(1) != 0;
  using S = TcpState;
  double heap_per = 0;
  double rss_per = 0;
  std::uint64_t live = 0;
  std::uint64_t overflow = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const std::uint64_t heap_before = heap_in_use();
    const std::uint64_t rss_before = rss_bytes();
    {
      CollectorConfig config;
      NullBuffer buffer;
      std::ostream out(&buffer);
      NoFdOwners fd_owners;
      JsonSink sink(out, kClock);
      Collector collector(config, sink, fd_owners);
      auto feed = [&](const tcptrail_event& record) {
        collector.on_record(std::as_bytes(std::span(&record, 1)));
      };
      std::uint64_t t = 1'000 * kMs;
      tcptrail_event listener = loopback_event(1);
      listener.sport = kServerPort;
      feed(transition(listener, t, S::kClose, S::kListen, true));
      for (std::uint64_t cookie = 2; cookie < sockets + 2; ++cookie, t += kUs) {
        tcptrail_event e = loopback_event(cookie);
        if (clients_only || cookie % 2 == 0) {
          e.sport = static_cast<std::uint16_t>(1024 + cookie % 60000);
          e.dport = kServerPort;
          feed(transition(e, t, S::kClose, S::kSynSent, true));
          if (!clients_only) {
            feed(transition(e, t + 10 * kUs, S::kSynSent, S::kEstablished));
          }
        } else {
          e.sport = kServerPort;
          e.dport = static_cast<std::uint16_t>(1024 + (cookie - 1) % 60000);
          feed(transition(e, t, S::kSynRecv, S::kEstablished));
        }
        if (cookie % (1 << 16) == 0) {
          collector.tick(t);
        }
      }
      collector.tick(t);
      live = collector.table().live();
      overflow = collector.table().stats().overflow;
      heap_per = static_cast<double>(heap_in_use() - heap_before) / static_cast<double>(live);
      rss_per = static_cast<double>(rss_bytes() - rss_before) / static_cast<double>(live);
    }
  }
  state.counters["live"] = static_cast<double>(live);
  state.counters["overflow"] = static_cast<double>(overflow);
  state.counters["heap_B_per_conn"] = heap_per;
  state.counters["rss_B_per_conn"] = rss_per;
  state.SetLabel(clients_only ? "client births" : "established, both ends");
}
BENCHMARK(BM_LiveConnectionMemory)
    ->ArgNames({"sockets", "clients_only"})
    ->Args({1'000'000, 0})
    ->Args({1'000'000, 1})
    ->Args({1'200'000, 1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

int dump(const char* path) {
  std::ofstream out(path, std::ios::binary);
  replay(storm(), false, out);
  replay(storm(), true, out);
  return out ? 0 : 1;
}

}  // namespace
}  // namespace tcptrail

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--dump") {
    return tcptrail::dump(argv[2]);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 2;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
