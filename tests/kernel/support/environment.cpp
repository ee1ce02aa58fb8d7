#include "support/environment.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "support/process.hpp"
#include "support/tracer.hpp"

namespace tt {

std::vector<std::string> kernel_gaps() {
  std::ifstream file("/sys/kernel/btf/vmlinux", std::ios::binary);
  const std::string btf((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // The tracepoint's BTF typedef name, NUL-terminated in the string section.
  const std::string sendmsg_locked("btf_trace_tcp_sendmsg_locked\0", 29);
  std::vector<std::string> gaps;
  if (btf.find(sendmsg_locked) == std::string::npos) {
    gaps.emplace_back("first_write_owner");
  }
  return gaps;
}

std::string without_kernel_gaps(const std::string& err) {
  std::string kept;
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("tcptrail: warning: this kernel cannot give ", 0) != 0) {
      kept.append(line).append("\n");
    }
  }
  return kept;
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && *ci != '\0';
}

std::string missing_kernel_support() {
  static const std::string reason = []() -> std::string {
    if (geteuid() != 0) {
      return "kernel tests need root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN); run them as root";
    }
    if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) {
      return "the kernel has no BTF (/sys/kernel/btf/vmlinux missing)";
    }
    // Only privilege problems skip; any other failure to start is the product's and fails the
    // tests that use it.
    const RunResult probe = run(
        {tcptrail_binary(), "trace", "--json", "--duration", "1ms", "--output", "/dev/null"}, 20s);
    if (probe.status.exit_code != 0) {
      const std::string& err = probe.err;
      for (const char* sign : {"ermission", "not permitted", "CAP_", "capabilit", "BTF"}) {
        if (err.find(sign) != std::string::npos) {
          return "BPF is not usable here: " + err;
        }
      }
    }
    return {};
  }();
  return reason;
}

std::string missing_netns_support() {
  static const std::string reason = []() -> std::string {
    for (const auto& tool :
         {std::vector<std::string>{"ip", "-V"}, std::vector<std::string>{"iptables", "-V"}}) {
      try {
        if (run(tool, 10s).status.exit_code != 0) {
          return tool[0] + " does not work here (install iproute2 and iptables)";
        }
      } catch (const std::exception& e) {
        return tool[0] + ": " + e.what();
      }
    }
    return {};
  }();
  return reason;
}

}  // namespace tt
