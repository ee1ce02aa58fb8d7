#include "sinks/leaks_view.hpp"

#include <algorithm>
#include <cstdio>

#include "sinks/format.hpp"

namespace tcptrail {

namespace {

std::string endpoint(const IpAddress& addr, std::uint16_t port) {
  char text[kAddressTextMax];
  std::string out(text, format_address(addr, text));
  if (addr.family == 6) {
    out = "[" + out + "]";
  }
  return out + ":" + std::to_string(port);
}

std::string holder(const Connection& conn, const Leak& leak) {
  if (!leak.owners.empty()) {
    return std::to_string(leak.owners.front().pid) + " " + printable(leak.owners.front().comm);
  }
  if (conn.owner.known()) {
    return std::to_string(conn.owner.pid) + " " + printable(conn.owner.comm_view());
  }
  return "(orphan)";
}

}  // namespace

LeaksView::LeaksView(std::ostream& out, LeakConfig thresholds, bool ansi)
    : out_(out), thresholds_(thresholds), ansi_(ansi) {}

void LeaksView::write(const Record& record) {
  if (const auto* pressure = std::get_if<TimeWaitPressureRecord>(&record)) {
    time_wait_pressure(pressure->pressure);
  } else if (const auto* stop_record = std::get_if<StopRecord>(&record)) {
    stop(stop_record->info);
  }
}

void LeaksView::time_wait_pressure(const TimeWaitPressure& pressure) {
  auto same = [&](const TimeWaitPressure& p) {
    return p.netns_ino == pressure.netns_ino && p.laddr == pressure.laddr &&
           p.raddr == pressure.raddr && p.rport == pressure.rport;
  };
  std::erase_if(pressure_, same);
  pressure_.push_back(pressure);
}

void LeaksView::table(std::string_view title, std::string_view key_header, const Groups& groups) {
  char line[256];
  out_ << title << "\n";
  std::snprintf(line, sizeof(line), "%-32s %-11s %6s %9s %7s\n", std::string(key_header).c_str(),
                "KIND", "COUNT", "OLDEST", "GROWTH");
  out_ << line;
  for (const auto& [key, group] : groups) {
    std::snprintf(line, sizeof(line), "%-32s %-11s %6u %9s %+7d\n", key.first.c_str(),
                  key.second.c_str(), group.count, human_duration(group.oldest_ns).c_str(),
                  static_cast<int>(group.new_since_start));
    out_ << line;
  }
  if (groups.empty()) {
    out_ << "(none)\n";
  }
  out_ << "\n";
}

void LeaksView::render(const std::vector<Suspect>& suspects) {
  if (ansi_) {
    out_ << "\x1b[H\x1b[2J";
  }
  out_ << "tcptrail leaks: " << suspects.size() << " suspect socket(s); thresholds CLOSE_WAIT "
       << human_duration(thresholds_.close_wait_ns) << ", FIN_WAIT2 "
       << human_duration(thresholds_.fin_wait2_ns) << ", SYN_RECV "
       << human_duration(thresholds_.syn_recv_ns) << "\n\n";
  Groups by_process;
  Groups by_peer;
  for (const Suspect& s : suspects) {
    const std::string kind(leak_kind_name(s.leak.kind));
    for (auto* groups : {&by_process, &by_peer}) {
      const std::string key =
          groups == &by_process ? holder(s.conn, s.leak) : endpoint(s.conn.raddr, s.conn.rport);
      Group& g = (*groups)[{key, kind}];
      ++g.count;
      g.new_since_start += s.conn.preexisting ? 0 : 1;
      g.oldest_ns = std::max(g.oldest_ns, s.leak.age_ns);
    }
  }
  table("BY PROCESS", "PID COMM", by_process);
  table("BY PEER", "PEER", by_peer);
  if (!pressure_.empty()) {
    out_ << "TIME_WAIT PRESSURE\n";
    for (const TimeWaitPressure& p : pressure_) {
      char line[256];
      std::snprintf(line, sizeof(line),
                    "%s -> %s: %u of %u local ports taken (%.0f%%), %u TIME_WAIT%s, %u live",
                    endpoint(p.laddr, 0).c_str(), endpoint(p.raddr, p.rport).c_str(), p.taken,
                    p.port_range, p.ratio * 100, p.count, p.reusable ? " (reusable)" : "", p.live);
      out_ << line;
      if (p.exhausted_in_ns) {
        out_ << ", none left in " << human_duration(*p.exhausted_in_ns);
      }
      out_ << " (netns " << p.netns_ino;
      if (!p.netns_name.empty()) {
        out_ << " " << printable(p.netns_name, 64);
      }
      out_ << ")\n";
    }
    out_ << "\n";
  }
  out_.flush();
}

void LeaksView::stop(const StopInfo& info) {
  out_ << "Leaks per process:\n";
  bool any = false;
  for (const ProcessRow& row : info.per_process) {
    if (row.counts.leaks != 0) {
      out_ << "  " << process_label(row) << ": " << row.counts.leaks << "\n";
      any = true;
    }
  }
  if (!any) {
    out_ << "  (none)\n";
  }
  if (info.run.lost != 0) {
    out_ << "WARNING: " << info.run.lost << " kernel events lost\n";
  }
}

}  // namespace tcptrail
