// decode_inet_diag_msg on arbitrary SOCK_DIAG_BY_FAMILY payloads: never reads outside the
// payload (ASan) and keeps the entry's invariants.
#include <linux/inet_diag.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "fuzz_check.hpp"
#include "system/sock_diag.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tcptrail::sys;  // NOLINT(google-build-using-namespace)
  SocketEntry entry;
  entry.lport = 1;
  const bool ok = decode_inet_diag_msg(std::as_bytes(std::span(data, size)), entry);
  fuzz_check(ok == (size >= sizeof(inet_diag_msg)));
  if (!ok) {
    fuzz_check(entry.lport == 1);  // left untouched
    return 0;
  }
  fuzz_check(entry.family == 4 || entry.family == 6);
  fuzz_check(entry.laddr.family == entry.family && entry.raddr.family == entry.family);
  if (entry.family == 4) {
    for (std::size_t i = 4; i < 16; ++i) {
      fuzz_check(entry.laddr.bytes[i] == 0 && entry.raddr.bytes[i] == 0);
    }
  }
  fuzz_check(entry.orphan == (entry.kind == SocketKind::kFull && entry.inode == 0));
  fuzz_check(!entry.has_info || entry.kind == SocketKind::kFull);
  return 0;
}
