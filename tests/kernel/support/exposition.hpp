// Reading a Prometheus text exposition that tcptrail served.
#pragma once

#include <sstream>
#include <string>

namespace tt {

// The value of the sample whose name and labels are exactly `series`; -1 if there is none.
inline double sample_value(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series + " ")) {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

}  // namespace tt
