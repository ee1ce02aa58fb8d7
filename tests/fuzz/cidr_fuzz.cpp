// Cidr::parse on arbitrary --addr text: an accepted CIDR has a prefix within its family,
// contains its own address and reads back from its canonical text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "tcptrail/filter.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tcptrail::Cidr;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto cidr = Cidr::parse(text);
  if (!cidr) {
    return 0;
  }
  // Text with a NUL in it is not an address, whatever precedes the NUL.
  fuzz_check(text.find('\0') == std::string_view::npos);
  fuzz_check(cidr->network.family == 4 || cidr->network.family == 6);
  fuzz_check(cidr->prefix <= (cidr->network.family == 4 ? 32 : 128));
  fuzz_check(cidr->contains(cidr->network));
  const auto back = Cidr::parse(cidr->network.to_string() + "/" + std::to_string(cidr->prefix));
  fuzz_check(back && back->network == cidr->network && back->prefix == cidr->prefix);
  return 0;
}
