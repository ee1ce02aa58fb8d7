#include "cli/privileges.hpp"

#include <linux/capability.h>

#include <array>
#include <iostream>
#include <system_error>
#include <utility>

#include "system/capabilities.hpp"
#include "tcptrail/error.hpp"

namespace tcptrail {
namespace {

struct Feature {
  const char* name;
  std::array<std::pair<int, const char*>, 2> needs;
  const char* cost;
};

// Verified by dropping each capability in turn (tests/kernel/capabilities_test.cpp).
constexpr std::array<Feature, 2> kFeatures = {{
    {"netns",
     {{{CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {CAP_SYS_PTRACE, "CAP_SYS_PTRACE"}}},
     "other network namespaces (containers) are not read: no preexisting sockets, leaks or "
     "TIME_WAIT pressure there"},
    {"owners",
     {{{CAP_SYS_PTRACE, "CAP_SYS_PTRACE"}, {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"}}},
     "other users' /proc/PID/fd are not read: their sockets' holders are not found"},
}};

}  // namespace

std::vector<std::string> report_degraded() {
  std::vector<std::string> degraded;
  for (const Feature& feature : kFeatures) {
    std::string missing;
    for (const auto& [cap, name] : feature.needs) {
      if (!sys::has_capability(cap)) {
        missing.append(missing.empty() ? "" : " and ").append(name);
      }
    }
    if (!missing.empty()) {
      std::cerr << "tcptrail: warning: without " << missing << ", " << feature.cost << "\n";
      degraded.emplace_back(feature.name);
    }
  }
  return degraded;
}

void drop_privileges() {
  try {
    sys::keep_only_capabilities({CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH});
  } catch (const std::system_error& e) {
    throw TraceError(std::string("cannot drop capabilities: ") + e.what(), e.code().value());
  }
}

}  // namespace tcptrail
