#include "system/cpus.hpp"

#include <cerrno>
#include <string>

#include "system/proc.hpp"

namespace tcptrail::sys {
namespace {

// Above any kernel's NR_CPUS (at most 8192, arch/x86/Kconfig), so a real list always fits; it
// keeps the range loop from wrapping at UINT32_MAX and a corrupt list from allocating gigabytes.
constexpr std::uint32_t kMaxCpus = 1U << 16;

}  // namespace

std::optional<std::vector<std::uint32_t>> parse_cpu_list(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  std::vector<std::uint32_t> cpus;
  for (bool more = !text.empty(); more;) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    more = comma != std::string_view::npos;
    text = more ? text.substr(comma + 1) : std::string_view{};
    const std::size_t dash = item.find('-');
    const auto first = parse_u32(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_u32(item.substr(dash + 1));
    if (!first || !last || *last < *first || *last >= kMaxCpus ||
        (!cpus.empty() && *first <= cpus.back())) {
      return std::nullopt;
    }
    for (std::uint32_t cpu = *first; cpu <= *last; ++cpu) {
      cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) {
    return std::nullopt;
  }
  return cpus;
}

std::vector<std::uint32_t> online_cpus() {
  constexpr const char* kPath = "/sys/devices/system/cpu/online";
  const std::string text = read_small_file(kPath, "cpus");
  auto cpus = parse_cpu_list(text);
  if (!cpus) {
    throw_errno(EINVAL, "cpus: cannot parse \"" + text + "\" from " + kPath);
  }
  return *cpus;
}

}  // namespace tcptrail::sys
