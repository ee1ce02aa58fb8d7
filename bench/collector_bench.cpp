// The collector alone, without a kernel: the ring-buffer records of a storm, folded as the
// kernel folds them, replayed in memory through decoder, connection table, analyzers and the
// JSON writer into a sink that discards its bytes. See bench/README.md.
//
//   tcptrail_collector_bench [--dump FILE] [google benchmark flags]
//
// --dump FILE writes the NDJSON of one replay (without, then with --transitions) to FILE and
// exits, to check that a change leaves the output byte-identical.

#include <benchmark/benchmark.h>

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
#include "tcptrail/fold.h"

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
  [[nodiscard]] std::uint64_t bytes() const { return bytes_; }

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

// The kernel's table is not the collector's memory: nothing is seeded or looked up here.
class NoKernel : public LiveConnections {
public:
  Seeded seed(Connection& /*conn*/) override { return Seeded::kFull; }
  void seed_listener(std::uint32_t /*netns_ino*/, std::uint16_t /*port*/,
                     const Owner& /*owner*/) override {}
  [[nodiscard]] std::optional<Connection> find(std::uint64_t /*sock_cookie*/) const override {
    return std::nullopt;
  }
  [[nodiscard]] std::size_t open() const override { return 0; }
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

// A ring record: what the kernel sends, and when.
struct RingRecord {
  std::uint64_t ts_ns;
  std::vector<std::byte> bytes;
};

// One socket of the storm, folded as the kernel folds it (tcptrail/fold.h), with what its
// ring records carry.
class FoldedSocket {
public:
  FoldedSocket(std::uint64_t cookie, std::uint16_t sport, std::uint16_t dport,
               std::uint32_t srtt_us) {
    sock_.sock_cookie = cookie;
    sock_.netns_ino = kNetns;
    sock_.sport = sport;
    sock_.dport = dport;
    sock_.srtt_us = srtt_us;
    const std::uint8_t loopback[4] = {127, 0, 0, 1};
    std::memcpy(sock_.saddr, loopback, 4);
    std::memcpy(sock_.daddr, loopback, 4);
  }
  // The socket's first change: it begins a lifecycle as tcptrail_admit says.
  void begin(std::uint64_t conn_id, std::uint64_t ts_ns, TcpState from, TcpState to,
             std::vector<RingRecord>& out, bool transitions, bool syscall = false) {
    int keep_id = 0;
    const int admit = tcptrail_admit(nullptr, static_cast<std::uint8_t>(from),
                                     static_cast<std::uint8_t>(to), &keep_id);
    tcptrail_begin(&conn_, admit, conn_id, ts_ns, static_cast<std::uint8_t>(from), 0, 0);
    change(ts_ns, from, to, out, transitions, syscall);
  }
  // A later change; a system call's names the owner.
  void change(std::uint64_t ts_ns, TcpState from, TcpState to, std::vector<RingRecord>& out,
              bool transitions, bool syscall = false) {
    if (syscall) {
      conn_.owner_pid = kPid;
      conn_.owner_source = TCPTRAIL_OWNER_SYSCALL;
      std::memcpy(conn_.owner_comm, "storm", 5);
    }
    int known = 0;
    const std::uint64_t ns_in_old =
        tcptrail_fold_state(&conn_, ts_ns, static_cast<std::uint8_t>(to), 0, sock_.srtt_us, &known);
    if (transitions) {
      tcptrail_event e{};
      e.hdr = {ts_ns, TCPTRAIL_EV_STATE, 4, {}};
      e.sk = sock_;
      e.sk.flags |= known ? TCPTRAIL_F_NS_IN_OLD : 0;
      e.conn_id = conn_.conn_id;
      e.ns_in_old = ns_in_old;
      e.old_state = static_cast<std::uint8_t>(from);
      e.new_state = static_cast<std::uint8_t>(to);
      e.owner_pid = conn_.owner_pid;
      e.owner_source = conn_.owner_source;
      e.role = conn_.role;
      e.conn_flags = conn_.flags;
      std::memcpy(e.owner_comm, conn_.owner_comm, sizeof(e.owner_comm));
      out.push_back({ts_ns, bytes_of(e)});
    }
    if (to == TcpState::kClose) {
      tcptrail_conn_record r{};
      r.hdr = {ts_ns, TCPTRAIL_EV_CONNECTION, 4, {}};
      r.sk = sock_;
      r.conn = conn_;
      out.push_back({ts_ns, bytes_of(r)});
    }
  }
  tcptrail_sock& sock() { return sock_; }

private:
  template <typename Raw> static std::vector<std::byte> bytes_of(const Raw& raw) {
    std::vector<std::byte> bytes(sizeof(raw));
    std::memcpy(bytes.data(), &raw, sizeof(raw));
    return bytes;
  }
  tcptrail_sock sock_{};
  tcptrail_conn conn_{};
};

// What the rings deliver for a loopback storm: `pairs` connections, a new one every 33 us
// (30k/s), each open for 0.1..100 ms. Both ends: the client connects and closes first, the
// server child is first seen leaving SYN_RECV on the final ACK. One connection record per end;
// with transitions also the 9 state records per connection. Sorted by time.
std::vector<RingRecord> storm_records(std::size_t pairs, bool transitions) {
  using S = TcpState;
  std::mt19937_64 random(5);
  std::uniform_int_distribution<std::uint64_t> open_ns(100 * kUs, 100 * kMs);
  std::uniform_int_distribution<std::uint64_t> jitter_ns(1 * kUs, 20 * kUs);
  std::vector<RingRecord> records;
  records.reserve(pairs * (transitions ? 11 : 2));
  const std::uint64_t start = 1'000 * kMs;
  for (std::size_t i = 0; i < pairs; ++i) {
    const auto client_port = static_cast<std::uint16_t>(32768 + i % 28232);
    FoldedSocket client(2 * i + 2, client_port, kServerPort, 20);
    FoldedSocket child(2 * i + 3, kServerPort, client_port, 15);
    std::uint64_t t = start + i * 33 * kUs;
    client.begin(2 * i + 1, t, S::kClose, S::kSynSent, records, transitions, true);
    client.change(t += jitter_ns(random), S::kSynSent, S::kEstablished, records, transitions);
    child.begin(2 * i + 2, t += jitter_ns(random), S::kSynRecv, S::kEstablished, records,
                transitions);
    t += open_ns(random);
    client.sock().bytes_acked = child.sock().bytes_received = 1000 + i % 5000;
    child.sock().bytes_acked = client.sock().bytes_received = 2000 + i % 7000;
    client.change(t, S::kEstablished, S::kFinWait1, records, transitions, true);
    client.sock().flags = TCPTRAIL_F_ORPHAN;
    child.change(t += jitter_ns(random), S::kEstablished, S::kCloseWait, records, transitions);
    client.change(t += 1 * kUs, S::kFinWait1, S::kFinWait2, records, transitions);
    child.change(t += jitter_ns(random), S::kCloseWait, S::kLastAck, records, transitions, true);
    child.sock().flags = TCPTRAIL_F_ORPHAN;
    client.change(t += jitter_ns(random), S::kFinWait2, S::kClose, records, transitions);
    child.change(t + 1 * kUs, S::kLastAck, S::kClose, records, transitions);
  }
  std::stable_sort(records.begin(), records.end(),
                   [](const RingRecord& a, const RingRecord& b) { return a.ts_ns < b.ts_ns; });
  return records;
}

const std::vector<RingRecord>& storm(bool transitions) {
  static const std::vector<RingRecord> folded = storm_records(100'000, false);
  static const std::vector<RingRecord> streamed = storm_records(100'000, true);
  return transitions ? streamed : folded;
}

// One replay as the trace loop would do it: records in, tick and flush by event time.
void replay(bool transitions, std::ostream& out) {
  const std::vector<RingRecord>& records = storm(transitions);
  CollectorConfig config;
  config.transitions = transitions;
  NoFdOwners fd_owners;
  NoKernel kernel;
  JsonSink sink(out, kClock, "bench");
  Collector collector(config, sink, fd_owners, kernel);
  std::uint64_t next_tick = records.front().ts_ns + kTickNs;
  std::uint64_t next_flush = records.front().ts_ns + kFlushNs;
  for (const RingRecord& record : records) {
    if (record.ts_ns >= next_tick) {
      collector.tick(record.ts_ns);
      next_tick = record.ts_ns + kTickNs;
      if (record.ts_ns >= next_flush) {
        sink.flush();
        next_flush = record.ts_ns + kFlushNs;
      }
    }
    collector.on_record(record.bytes);
  }
  collector.finish(records.back().ts_ns + kTickNs, RunStats{});
}

void BM_CollectorReplay(benchmark::State& state) {
  const bool transitions = state.range(0) != 0;
  NullBuffer buffer;
  std::ostream out(&buffer);
  for ([[maybe_unused]] auto _ : state) {
    replay(transitions, out);
  }
  // Items are connections (two ends each), with or without their state records.
  state.SetItemsProcessed(state.iterations() * 200'000);
  state.SetBytesProcessed(static_cast<std::int64_t>(buffer.bytes()));
  state.SetLabel(transitions ? "--json --transitions" : "--json");
}
BENCHMARK(BM_CollectorReplay)
    ->ArgName("transitions")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

int dump(const char* path) {
  std::ofstream out(path, std::ios::binary);
  replay(false, out);
  replay(true, out);
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
