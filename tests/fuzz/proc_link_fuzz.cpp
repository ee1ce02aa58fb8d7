// The /proc names and links fd_owners and netns read: pid and fd directory names (parse_u32)
// and "socket:[INODE]" fd links (parse_socket_link). What they accept reads back from its
// canonical text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "system/fd_owners.hpp"
#include "system/proc.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tcptrail::sys;  // NOLINT(google-build-using-namespace)
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto number = parse_u32(text)) {
    fuzz_check(!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos);
    fuzz_check(parse_u32(std::to_string(*number)) == number);
  }
  if (const auto inode = parse_socket_link(text)) {
    fuzz_check(text.starts_with("socket:[") && text.ends_with(']'));
    fuzz_check(parse_socket_link("socket:[" + std::to_string(*inode) + "]") == inode);
  }
  return 0;
}
