// Network namespaces, named by the inode of their nsfs file (the number in "net:[INO]", the same
// value BPF reads from sk->__sk_common.skc_net->ns.inum).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "system/unique_fd.hpp"

namespace tcptrail::sys {

// The network namespace of the calling thread (not of the process: setns moves one thread).
std::uint32_t current_netns_ino();

// Every network namespace a process is in or `ip netns` keeps, the caller's included.
std::vector<std::uint32_t> list_netns();

// A process whose network namespace is netns_ino, found by scanning /proc; nullopt if none.
std::optional<std::uint32_t> find_process_in_netns(std::uint32_t netns_ino);

// The name `ip netns` gives the namespace (its bind mount under /run/netns), or "" if it has
// none. Names are chosen by whoever created them: print them through a printable guard.
std::string netns_name(std::uint32_t netns_ino);

// An O_RDONLY descriptor of the namespace, taken from a process in it or, failing that, from a
// bind mount under /run/netns (`ip netns add` without any process inside). Throws
// std::system_error (ENOENT when nothing refers to the namespace).
UniqueFd open_netns(std::uint32_t netns_ino);

// Runs fn on a short-lived thread that first joins the namespace ns_fd, so the caller's threads
// keep theirs. Blocks until fn returns; rethrows what fn (or setns) threw.
void run_in_netns(int ns_fd, const std::function<void()>& fn);

}  // namespace tcptrail::sys
