// parse_port_range on arbitrary ip_local_port_range text: an accepted range is ordered and reads
// back from its own text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "system/port_range.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tcptrail::sys::parse_port_range;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto range = parse_port_range(text);
  if (!range) {
    return 0;
  }
  fuzz_check(range->lo <= range->hi);
  fuzz_check(range->size() >= 1 && range->size() <= 65536);
  fuzz_check(parse_port_range(std::to_string(range->lo) + "\t" + std::to_string(range->hi) +
                              "\n") == range);
  return 0;
}
