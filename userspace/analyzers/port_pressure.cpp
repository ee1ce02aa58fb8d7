#include "analyzers/port_pressure.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "analyzers/leak_detector.hpp"

namespace tcptrail {

namespace {

constexpr double kNsPerS = 1e9;
// The entry rate is measured over the last second, or since the first entry in it, but not
// over less than this. Bursts are that fast: a client on a veth fills 200 ports in 15 ms. The
// prediction only counts once a tenth of the range is taken, so a few entries do not make one.
constexpr std::uint64_t kMinRateSpanNs = 1'000'000;
// Growth that would take longer than this (a year) is rounding noise, not a prediction.
constexpr double kNeverS = 365.0 * 24 * 3600;

bool is_loopback(const IpAddress& a) {
  if (a.family != 6) {
    return a.bytes[0] == 127;
  }
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                                 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), a.bytes.begin())) {
    return a.bytes[12] == 127;
  }
  return std::all_of(a.bytes.begin(), a.bytes.begin() + 15, [](auto b) { return b == 0; }) &&
         a.bytes[15] == 1;
}

std::size_t count_after(const std::deque<std::uint64_t>& entries, std::uint64_t ts_ns) {
  return static_cast<std::size_t>(entries.end() -
                                  std::upper_bound(entries.begin(), entries.end(), ts_ns));
}

}  // namespace

bool time_wait_reusable(std::uint8_t tw_reuse, const IpAddress& laddr, const IpAddress& raddr) {
  return tw_reuse == 1 || (tw_reuse == 2 && (is_loopback(laddr) || is_loopback(raddr)));
}

PortPressure::PortPressure(PortPressureConfig config,
                           std::function<void(const TimeWaitPressure&)> report)
    : config_(config), report_(std::move(report)) {}

void PortPressure::on_sweep(const SweepDigest& digest) {
  Namespace& ns = namespaces_[digest.netns_ino];
  ns.port_range = digest.ports.size;
  ns.tw_reuse = digest.ports.tw_reuse;
  ns.name = digest.ports.name;
  ns.reuse_delay_ns = std::uint64_t{digest.ports.tw_reuse_delay_ms} * 1'000'000;
  if (!digest.time_wait_counted) {
    return;  // the counts go on from the connections entering TIME_WAIT
  }
  const std::uint64_t now = digest.ts_ns;
  std::set<Key> seen;
  auto update = [&](const Key& key, std::uint32_t time_wait, std::uint32_t live) {
    Destination& d = destinations_[key];
    if (d.swept_ns != 0 && now > d.swept_ns) {
      const double span_s = static_cast<double>(now - d.swept_ns) / kNsPerS;
      // Entered since the last sweep, less what this sweep still sees, left meanwhile.
      const auto entered =
          static_cast<double>(count_after(d.entries, d.swept_ns) - count_after(d.entries, now));
      d.expiry_per_s = std::max(0.0, d.swept_time_wait + entered - time_wait) / span_s;
      d.live_per_s = (static_cast<double>(live) - d.swept_live) / span_s;
    }
    d.swept_ns = now;
    d.swept_time_wait = time_wait;
    d.swept_live = live;
    seen.insert(key);
    evaluate(key, d, now);
  };
  for (const DestinationCount& c : digest.destinations) {
    update({digest.netns_ino, c.laddr, c.raddr, c.rport}, c.time_wait, c.live);
  }
  for (auto it = destinations_.begin(); it != destinations_.end();) {
    if (std::get<0>(it->first) != digest.netns_ino || seen.contains(it->first)) {
      ++it;
    } else if (count_after(it->second.entries, now - std::min(now, ns.reuse_delay_ns)) == 0) {
      it = destinations_.erase(it);  // nothing left towards it
    } else {
      update(it->first, 0, 0);
      ++it;
    }
  }
}

void PortPressure::on_time_wait(const Connection& conn) {
  // Only namespaces whose sweeps tell the range: the others cannot be warned about.
  auto ns = namespaces_.find(conn.netns_ino);
  if (ns == namespaces_.end() || ns->second.port_range == 0) {
    return;
  }
  const Key key{conn.netns_ino, conn.laddr, conn.raddr, conn.rport};
  Destination& d = destinations_[key];
  // Records of different CPUs come up to the kernel's flush interval out of CLOSE order: the
  // entries stay sorted (a late one goes in near the end), and the destination's time goes on
  // from its newest.
  d.entries.insert(std::upper_bound(d.entries.begin(), d.entries.end(), conn.end_ns), conn.end_ns);
  evaluate(key, d, std::max(d.entries.back(), d.warned_ns));
}

void PortPressure::forget_namespace(std::uint32_t netns_ino) {
  namespaces_.erase(netns_ino);
  std::erase_if(destinations_, [&](const auto& d) { return std::get<0>(d.first) == netns_ino; });
}

std::map<std::uint32_t, double>
PortPressure::worst_ratios(std::uint64_t now_ns,
                           const std::function<bool(const TimeWaitPressure&)>& wanted) const {
  std::map<std::uint32_t, double> worst;
  for (const auto& [netns, ns] : namespaces_) {
    if (ns.port_range != 0) {
      worst.emplace(netns, 0.0);
    }
  }
  for (const auto& [key, dest] : destinations_) {
    if (const auto p = measure(key, dest, now_ns); p && wanted(*p)) {
      double& ratio = worst[p->netns_ino];
      ratio = std::max(ratio, p->ratio);
    }
  }
  return worst;
}

void PortPressure::evaluate(const Key& key, Destination& d, std::uint64_t now_ns) {
  auto ns = namespaces_.find(std::get<0>(key));
  const std::uint64_t reuse_delay_ns =
      ns != namespaces_.end() ? ns->second.reuse_delay_ns : Namespace{}.reuse_delay_ns;
  const std::uint64_t recent_since = now_ns - std::min(now_ns, reuse_delay_ns);
  while (!d.entries.empty() && d.entries.front() <= std::min(recent_since, d.swept_ns)) {
    d.entries.pop_front();
  }
  const std::optional<TimeWaitPressure> measured = measure(key, d, now_ns);
  if (!measured) {
    return;
  }
  const TimeWaitPressure& p = *measured;
  const bool soon = p.exhausted_in_ns && *p.exhausted_in_ns <= config_.horizon_ns &&
                    p.ratio >= kMinPredictedShare;
  if (p.ratio < config_.warn && !soon) {
    return;
  }
  if (d.warned && now_ns < d.warned_ns + config_.repeat_ns) {
    return;
  }
  d.warned = true;
  d.warned_ns = now_ns;
  report_(p);
}

std::optional<TimeWaitPressure> PortPressure::measure(const Key& key, const Destination& d,
                                                      std::uint64_t now_ns) const {
  auto ns = namespaces_.find(std::get<0>(key));
  if (ns == namespaces_.end() || ns->second.port_range == 0) {
    return std::nullopt;
  }
  const std::uint64_t recent_since = now_ns - std::min(now_ns, ns->second.reuse_delay_ns);
  const auto& [netns_ino, laddr, raddr, rport] = key;
  const bool reusable = time_wait_reusable(ns->second.tw_reuse, laddr, raddr);
  const double since_sweep =
      static_cast<double>(count_after(d.entries, d.swept_ns)) -
      d.expiry_per_s * static_cast<double>(now_ns - std::min(now_ns, d.swept_ns)) / kNsPerS;
  const auto time_wait =
      static_cast<std::uint32_t>(std::max(0.0, std::round(d.swept_time_wait + since_sweep)));
  const std::size_t recent = count_after(d.entries, recent_since);
  double entry_per_s = 0;
  if (recent > 0) {
    const std::uint64_t oldest = *(d.entries.end() - static_cast<std::ptrdiff_t>(recent));
    const std::uint64_t span = std::max(now_ns - std::min(now_ns, oldest), kMinRateSpanNs);
    entry_per_s = static_cast<double>(recent) * kNsPerS / static_cast<double>(span);
  }

  TimeWaitPressure p;
  p.ts_ns = now_ns;
  p.netns_ino = netns_ino;
  p.netns_name = ns->second.name;
  p.laddr = laddr;
  p.raddr = raddr;
  p.rport = rport;
  p.count = time_wait;
  p.live = d.swept_live;
  p.tw_reuse = ns->second.tw_reuse;
  p.reusable = reusable;
  // Where reuse applies only the TIME_WAIT of the last reuse delay keeps ports; its count is
  // steady at a steady rate, so only live connections make it grow.
  p.taken = d.swept_live + (reusable ? static_cast<std::uint32_t>(recent) : time_wait);
  p.port_range = ns->second.port_range;
  p.ratio = static_cast<double>(p.taken) / p.port_range;
  p.growth_per_s = d.live_per_s + (reusable ? 0.0 : entry_per_s - d.expiry_per_s);
  if (p.taken >= p.port_range) {
    p.exhausted_in_ns = 0;
  } else if (p.growth_per_s > 0) {
    const double seconds = (p.port_range - p.taken) / p.growth_per_s;
    if (seconds < kNeverS) {
      p.exhausted_in_ns = static_cast<std::uint64_t>(seconds * kNsPerS);
    }
  }
  return p;
}

}  // namespace tcptrail
