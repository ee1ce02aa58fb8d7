// Cidr::parse on arbitrary --addr text: an accepted CIDR has a prefix within its family,
// contains its own address and reads back from its canonical text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tcptrail/filter.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tcptrail::Cidr;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto cidr = Cidr::parse(text);
  if (!cidr) {
    return 0;
  }
  // Text with a NUL in it is not an address, whatever precedes the NUL.
  check(text.find('\0') == std::string_view::npos);
  check(cidr->network.family == 4 || cidr->network.family == 6);
  check(cidr->prefix <= (cidr->network.family == 4 ? 32 : 128));
  check(cidr->contains(cidr->network));
  const auto back = Cidr::parse(cidr->network.to_string() + "/" + std::to_string(cidr->prefix));
  check(back && back->network == cidr->network && back->prefix == cidr->prefix);
  return 0;
}
