#include "system/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "system/unique_fd.hpp"

namespace tcptrail::sys {
namespace {

struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
};

CapSets read_capabilities() {
  CapSets sets;
  if (::syscall(SYS_capget, &sets.header, sets.data) != 0) {
    throw_errno(errno, "capget");
  }
  return sets;
}

bool in(const __u32 (&words)[2], int cap) {
  return (words[cap / 32] >> (cap % 32) & 1) != 0;
}

}  // namespace

bool has_capability(int cap) {
  const CapSets sets = read_capabilities();
  const __u32 effective[2] = {sets.data[0].effective, sets.data[1].effective};
  return in(effective, cap);
}

void keep_only_capabilities(std::initializer_list<int> keep) {
  CapSets sets = read_capabilities();
  const __u32 permitted[2] = {sets.data[0].permitted, sets.data[1].permitted};
  auto kept = [&](int cap) {
    return in(permitted, cap) && std::find(keep.begin(), keep.end(), cap) != keep.end();
  };
  // The bounding set first, while CAP_SETPCAP is still ours. Without it the bounding set stays:
  // no-new-privs already keeps an execve from raising the permitted set.
  const bool can_drop_bounding = in(permitted, CAP_SETPCAP);
  for (int cap = 0; can_drop_bounding && cap <= CAP_LAST_CAP; ++cap) {
    if (!kept(cap) && ::prctl(PR_CAPBSET_READ, cap) == 1 && ::prctl(PR_CAPBSET_DROP, cap) != 0 &&
        errno != EINVAL) {
      throw_errno(errno, "prctl(PR_CAPBSET_DROP)");
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    throw_errno(errno, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  for (auto& word : sets.data) {
    word = {};
  }
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (kept(cap)) {
      const __u32 bit = __u32{1} << (cap % 32);
      sets.data[cap / 32].effective |= bit;
      sets.data[cap / 32].permitted |= bit;
    }
  }
  if (::syscall(SYS_capset, &sets.header, sets.data) != 0) {
    throw_errno(errno, "capset");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    throw_errno(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
}

}  // namespace tcptrail::sys
