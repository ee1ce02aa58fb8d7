// Where identities come from: the cgroup2 mount (a cgroup id is the inode number of its
// directory there) and /proc/PID. Every function here may block on the file system; they run
// on the identity resolver's thread, never on the ring thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "tcptrail/identity.hpp"

namespace tcptrail::sys {

// The mount point of the first cgroup2 mount in a /proc/PID/mountinfo text (octal escapes such
// as "\040" decoded), or nullopt if there is none.
std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo);
// The same for /proc/self/mountinfo; nullopt if it cannot be read or has no cgroup2 mount.
std::optional<std::string> find_cgroup2_mount();

// Walks the cgroup tree under mount and returns the path (relative to mount, "/" for its root)
// of every directory whose inode is in ids. Stops early once all are found. Directories that
// vanish during the walk are skipped; the walk goes at most 64 levels deep.
std::unordered_map<std::uint64_t, std::string>
find_cgroup_paths(const std::string& mount, const std::unordered_set<std::uint64_t>& ids);

// The parent pid in a /proc/PID/stat text; the comm before it may itself hold spaces and
// ")". nullopt if malformed.
std::optional<std::uint32_t> parse_proc_stat_ppid(std::string_view text);

// Reads /proc/PID/stat and /proc/PID/exe; nullopt if the process is gone or unreadable. exe
// stays empty where /proc/PID/exe cannot be read (a kernel thread, no CAP_SYS_PTRACE).
std::optional<ProcessIdentity> read_process(std::uint32_t pid);

// gethostname(); "" if it fails.
std::string host_name();
// /proc/sys/kernel/random/boot_id without its newline: one value per boot of this machine, so
// that records of two boots are told apart. "" if it cannot be read.
std::string boot_id();

}  // namespace tcptrail::sys
