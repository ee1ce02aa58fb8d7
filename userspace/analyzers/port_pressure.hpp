// Ephemeral port exhaustion seen coming. connect() needs a local port that no other socket uses
// towards the same destination (namespace, local address, remote address and port); TIME_WAIT
// keeps a port taken for 60 s unless tcp_tw_reuse lets connect() take it back. Per destination
// this counts the ports taken, from the sweeps that count them (SweepDigest::time_wait_counted)
// and, between those, from every connection that enters TIME_WAIT, and predicts from their growth
// when the range runs out. Time is the caller's (monotonic ns, the events' clock).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "tcptrail/connection.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

struct SweepDigest;

struct PortPressureConfig {
  double warn = 0.5;  // fraction of the port range taken
  // Also warn when the range runs out within this long at the current growth, once at least
  // kMinPredictedShare of it is taken: a burst is seen before it reaches `warn`.
  std::uint64_t horizon_ns = 10'000'000'000;
  // A destination still at risk is reported again after this long.
  std::uint64_t repeat_ns = 10'000'000'000;
};

class PortPressure {
public:
  static constexpr double kMinPredictedShare = 0.1;

  PortPressure(PortPressureConfig config, std::function<void(const TimeWaitPressure&)> report);

  // A sweep of one namespace: its port settings, and counts that replace what was estimated
  // since the last ones, when it has them.
  void on_sweep(const SweepDigest& digest);
  // A connection ended by entering TIME_WAIT at conn.end_ns (calls come in that order).
  void on_time_wait(const Connection& conn);
  void forget_namespace(std::uint32_t netns_ino);
  // As of now_ns, for each namespace whose port range a sweep told: the share of the range
  // taken towards its worst destination among those `wanted` accepts (0 with none), whether or
  // not it is high enough to warn about.
  std::map<std::uint32_t, double>
  worst_ratios(std::uint64_t now_ns,
               const std::function<bool(const TimeWaitPressure&)>& wanted) const;

private:
  using Key = std::tuple<std::uint32_t, IpAddress, IpAddress, std::uint16_t>;
  struct Namespace {
    std::uint32_t port_range = 0;  // 0: unknown, no warning
    std::uint8_t tw_reuse = 0;
    std::string name;
    // How long a TIME_WAIT port stays unusable where tcp_tw_reuse applies (tcp_twsk_unique):
    // tcp_tw_reuse_delay since it entered TIME_WAIT (6.13), or before that until the peer's
    // last timestamp is from an earlier second, 1 to 2 s, of which the lower bound is taken.
    std::uint64_t reuse_delay_ns = 1'000'000'000;
  };
  struct Destination {
    std::uint64_t swept_ns = 0;  // when the last sweep counted it (0: never)
    std::uint32_t swept_time_wait = 0;
    std::uint32_t swept_live = 0;
    double expiry_per_s = 0;  // TIME_WAIT sockets leaving, as the last two sweeps tell
    double live_per_s = 0;
    // When connections entered TIME_WAIT, oldest first: those after swept_ns and those of
    // the namespace's last reuse_delay_ns.
    std::deque<std::uint64_t> entries;
    std::uint64_t warned_ns = 0;
    bool warned = false;
  };

  // What is taken towards the destination as of now_ns; nullopt while its namespace's range is
  // not known.
  [[nodiscard]] std::optional<TimeWaitPressure> measure(const Key& key, const Destination& dest,
                                                        std::uint64_t now_ns) const;
  // Measures, and reports the destination if it is at risk and was not reported lately.
  void evaluate(const Key& key, Destination& dest, std::uint64_t now_ns);

  PortPressureConfig config_;
  std::function<void(const TimeWaitPressure&)> report_;
  std::map<std::uint32_t, Namespace> namespaces_;
  std::map<Key, Destination> destinations_;
};

// Whether connect() may take this destination's TIME_WAIT ports back (tcp_twsk_unique): always
// with tcp_tw_reuse 1, with 2 when either address is loopback.
bool time_wait_reusable(std::uint8_t tw_reuse, const IpAddress& laddr, const IpAddress& raddr);

}  // namespace tcptrail
