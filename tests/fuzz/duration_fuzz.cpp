// parse_duration on arbitrary option text: an accepted duration is in range, and the same
// number of nanoseconds written with the "us" unit reads back within a microsecond plus the
// precision of the double it is computed in (2^-52 relative: 128 ns at 10^18).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cli/options.hpp"
#include "fuzz_check.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tcptrail::parse_duration;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto ns = parse_duration(text);
  if (!ns) {
    return 0;
  }
  fuzz_check(*ns >= 1 && *ns <= 1'000'000'000'000'000'000uLL);
  if (*ns >= 1000) {
    const auto back = parse_duration(std::to_string(*ns / 1000) + "us");
    const std::uint64_t slack = 1000 + (*ns >> 51);
    fuzz_check(back && (*back <= *ns ? *ns - *back : *back - *ns) <= slack);
  }
  return 0;
}
