// `tcptrail leaks` in a terminal: the current suspects grouped by process, a server's by its
// local service and client host (not the client's ephemeral port), a client's by destination,
// with counts, oldest age and growth since start (suspects that were not already there when
// tracing began), redrawn in place on each render() and cut to fit the terminal: the groups
// with the most sockets first, and a line for the rest and a total under each table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "analyzers/leak_detector.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

class LeaksView : public RecordSink {
public:
  // ansi: clear the screen before each render (the output is a terminal).
  LeaksView(std::ostream& out, LeakConfig thresholds, bool ansi);

  // rows: the terminal's height, 0 for no limit.
  void render(const std::vector<Suspect>& suspects, std::size_t rows = 0);

  // Individual records are not printed: the view shows the current suspects instead, and
  // keeps only the TIME_WAIT pressure and the exit summary.
  void write(const Record& record) override;
  void flush() override { out_.flush(); }

private:
  struct Group {
    std::uint32_t count = 0;
    std::uint32_t new_since_start = 0;
    std::uint64_t oldest_ns = 0;
  };
  using Groups = std::map<std::pair<std::string, std::string>, Group>;  // (key, kind)
  void time_wait_pressure(const TimeWaitPressure& pressure);
  // The exit summary: leaks per process.
  void stop(const StopInfo& info);
  // At most `shown` rows of groups, the largest first, then what was left out and the total.
  void table(std::string_view title, std::string_view key_header, const Groups& groups,
             std::size_t shown);

  std::ostream& out_;
  LeakConfig thresholds_;
  bool ansi_;
  std::vector<TimeWaitPressure> pressure_;  // the latest warning per destination
};

}  // namespace tcptrail
