// parse_cpu_list on arbitrary /sys CPU lists: terminates, and what it accepts is strictly
// ascending and reads back from its own canonical form.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "system/cpus.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto cpus = tcptrail::sys::parse_cpu_list(text);
  if (!cpus) {
    return 0;
  }
  fuzz_check(!cpus->empty());
  std::string canonical;
  for (std::size_t i = 0; i < cpus->size(); ++i) {
    fuzz_check(i == 0 || (*cpus)[i - 1] < (*cpus)[i]);
    canonical += (i == 0 ? "" : ",") + std::to_string((*cpus)[i]);
  }
  fuzz_check(tcptrail::sys::parse_cpu_list(canonical) == cpus);
  return 0;
}
