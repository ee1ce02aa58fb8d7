// What the kernel tests need from the machine, and the skip-or-fail rule: without it a test is
// skipped with the reason, unless $CI is set, where it fails instead.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tt {

// Empty when tcptrail can load its programs here (root, kernel BTF, BPF usable), else why not.
// Probes once per process by running the binary briefly.
std::string missing_kernel_support();
// Empty when network namespaces, veth and iptables can be used here, else why not.
std::string missing_netns_support();
bool in_ci();
// The features tcptrail reports off on this kernel (the start record's `degraded` names), found
// here from the kernel's BTF independently of tcptrail: "first_write_owner" without the
// tcp:tcp_sendmsg_locked tracepoint (Debian 12's 6.1 lacks it).
std::vector<std::string> kernel_gaps();
// tcptrail's stderr less its warnings about this kernel's gaps (one line each, at start): what
// a test of another path expects exactly.
std::string without_kernel_gaps(const std::string& err);

}  // namespace tt

#define TT_SKIP_OR_FAIL_IF(reason_expr)                                                            \
  do {                                                                                             \
    const std::string tt_reason_ = (reason_expr);                                                  \
    if (!tt_reason_.empty()) {                                                                     \
      if (::tt::in_ci()) {                                                                         \
        FAIL() << "CI is set, so this is a failure: " << tt_reason_;                               \
      }                                                                                            \
      GTEST_SKIP() << tt_reason_;                                                                  \
    }                                                                                              \
  } while (0)

// First statement of every kernel test.
#define TT_REQUIRE_KERNEL() TT_SKIP_OR_FAIL_IF(::tt::missing_kernel_support())
// Additionally for tests that build namespaces.
#define TT_REQUIRE_NETNS()                                                                         \
  do {                                                                                             \
    TT_REQUIRE_KERNEL();                                                                           \
    TT_SKIP_OR_FAIL_IF(::tt::missing_netns_support());                                             \
  } while (0)
