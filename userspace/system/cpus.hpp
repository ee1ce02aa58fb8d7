// The CPUs that are online: the BPF side writes to one ring buffer per CPU.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace tcptrail::sys {

// Parses the kernel's CPU list format ("0-3,8,10-11\n") into ascending CPU numbers. Returns
// nullopt for anything else (an empty list, a reversed or malformed range, a CPU number of 65536
// or more).
std::optional<std::vector<std::uint32_t>> parse_cpu_list(std::string_view text);

// /sys/devices/system/cpu/online. Throws std::system_error.
std::vector<std::uint32_t> online_cpus();

}  // namespace tcptrail::sys
