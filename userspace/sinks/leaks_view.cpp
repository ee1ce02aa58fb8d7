#include "sinks/leaks_view.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

#include "sinks/format.hpp"

namespace tcptrail {

namespace {

std::string host(const IpAddress& addr) {
  char text[kAddressTextMax];
  return {text, format_address(addr, text)};
}

std::string endpoint(const IpAddress& addr, std::uint16_t port) {
  const std::string text = host(addr);
  return (addr.family == 6 ? "[" + text + "]" : text) + ":" + std::to_string(port);
}

// Rows of groups each of the three tables shows on a screen of `rows` lines (0: no limit): what
// is left after the header (2 lines), each table's title, column header, "more", total and
// blank lines (5 each) and `other` lines, dealt out one row at a time so that a table with few
// groups leaves its share to the others; at least one row each however small the screen.
std::array<std::size_t, 3> fit_rows(std::array<std::size_t, 3> groups, std::size_t rows,
                                    std::size_t other) {
  constexpr std::size_t kFixed = 2 + 3 * 5;
  if (rows == 0) {
    return groups;
  }
  // The last line stays empty: a newline there would scroll the title off the screen.
  const std::size_t usable = rows - 1;
  std::size_t budget = usable > kFixed + other ? usable - kFixed - other : 0;
  std::array<std::size_t, 3> shown{};
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (groups[i] != 0) {
      shown[i] = 1;
      budget -= std::min<std::size_t>(budget, 1);
    }
  }
  for (bool gave = true; budget != 0 && gave;) {
    gave = false;
    for (std::size_t i = 0; i < shown.size() && budget != 0; ++i) {
      if (shown[i] < groups[i]) {
        ++shown[i];
        --budget;
        gave = true;
      }
    }
  }
  return shown;
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

void LeaksView::table(std::string_view title, std::string_view key_header, const Groups& groups,
                      std::size_t shown) {
  char line[512];
  out_ << title << "\n";
  std::snprintf(line, sizeof(line), "%-40s %-11s %6s %9s %7s\n", std::string(key_header).c_str(),
                "KIND", "COUNT", "OLDEST", "GROWTH");
  out_ << line;
  std::vector<Groups::const_iterator> rows;
  std::uint64_t sockets = 0;
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    rows.push_back(it);
    sockets += it->second.count;
  }
  // The most sockets first; among equals the oldest, then by key for a stable screen.
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    if (a->second.count != b->second.count) {
      return a->second.count > b->second.count;
    }
    if (a->second.oldest_ns != b->second.oldest_ns) {
      return a->second.oldest_ns > b->second.oldest_ns;
    }
    return a->first < b->first;
  });
  std::uint64_t sockets_shown = 0;
  for (std::size_t i = 0; i < rows.size() && i < shown; ++i) {
    const auto& [key, group] = *rows[i];
    std::snprintf(line, sizeof(line), "%-40s %-11s %6u %9s %+7d\n", key.first.c_str(),
                  key.second.c_str(), group.count, human_duration(group.oldest_ns).c_str(),
                  static_cast<int>(group.new_since_start));
    out_ << line;
    sockets_shown += group.count;
  }
  if (rows.empty()) {
    out_ << "(none)\n";
  } else {
    if (rows.size() > shown) {
      out_ << "... and " << rows.size() - shown << " more group(s), " << sockets - sockets_shown
           << " socket(s)\n";
    }
    out_ << "total: " << rows.size() << " group(s), " << sockets << " socket(s)\n";
  }
  out_ << "\n";
}

void LeaksView::render(const std::vector<Suspect>& suspects, std::size_t rows) {
  if (ansi_) {
    out_ << "\x1b[H\x1b[2J";
  }
  out_ << "tcptrail leaks: " << suspects.size() << " suspect socket(s); thresholds CLOSE_WAIT "
       << human_duration(thresholds_.close_wait_ns) << ", FIN_WAIT2 "
       << human_duration(thresholds_.fin_wait2_ns) << ", SYN_RECV "
       << human_duration(thresholds_.syn_recv_ns) << "\n\n";
  Groups by_process;
  Groups by_service;
  Groups by_destination;
  for (const Suspect& s : suspects) {
    const std::string kind(leak_kind_name(s.leak.kind));
    auto add = [&](Groups& groups, std::string key) {
      Group& g = groups[{std::move(key), kind}];
      ++g.count;
      g.new_since_start += s.conn.preexisting ? 0 : 1;
      g.oldest_ns = std::max(g.oldest_ns, s.leak.age_ns);
    };
    add(by_process, holder(s.conn, s.leak));
    if (s.conn.role == Role::kServer) {
      add(by_service, endpoint(s.conn.laddr, s.conn.lport) + " <- " + host(s.conn.raddr));
    } else {
      add(by_destination, endpoint(s.conn.raddr, s.conn.rport));
    }
  }
  const std::array<std::size_t, 3> shown =
      fit_rows({by_process.size(), by_service.size(), by_destination.size()}, rows,
               pressure_.empty() ? 0 : pressure_.size() + 2);
  table("BY PROCESS", "PID COMM", by_process, shown[0]);
  table("SERVER LEAKS BY SERVICE AND CLIENT HOST", "SERVICE <- CLIENT HOST", by_service, shown[1]);
  table("CLIENT LEAKS BY DESTINATION", "DESTINATION", by_destination, shown[2]);
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
