#include "system/identity_sources.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

#include "system/proc.hpp"

namespace tcptrail::sys {

namespace {

constexpr int kMaxCgroupDepth = 64;

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescape_mount_path(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      const std::string_view digits = text.substr(i + 1, 3);
      unsigned value = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, 8);
      if (ec == std::errc() && end == digits.data() + digits.size() && value < 256) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    const std::size_t space = line.find(' ');
    if (space != 0) {
      out.push_back(line.substr(0, space));
    }
    if (space == std::string_view::npos) {
      break;
    }
    line.remove_prefix(space + 1);
  }
  return out;
}

void walk(int dir_fd, const std::string& path, int depth,
          const std::unordered_set<std::uint64_t>& ids,
          std::unordered_map<std::uint64_t, std::string>& found) {
  DirPtr dir = open_dir_at(dir_fd, ".");
  if (!dir) {
    return;  // removed since it was listed
  }
  // d_ino of a kernfs directory is its cgroup id: no stat per directory.
  while (const dirent* entry = ::readdir(dir.get())) {
    if (found.size() == ids.size()) {
      return;
    }
    const std::string_view name = entry->d_name;
    if (entry->d_type != DT_DIR || name == "." || name == "..") {
      continue;
    }
    const std::string child =
        path == "/" ? "/" + std::string(name) : path + "/" + std::string(name);
    if (ids.contains(entry->d_ino)) {
      found.emplace(entry->d_ino, child);
    }
    if (depth < kMaxCgroupDepth) {
      UniqueFd child_fd(::openat(::dirfd(dir.get()), entry->d_name,
                                 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
      if (child_fd) {
        walk(child_fd.get(), child, depth + 1, ids, found);
      }
    }
  }
}

}  // namespace

std::optional<std::string> parse_cgroup2_mount(std::string_view mountinfo) {
  while (!mountinfo.empty()) {
    const std::size_t newline = mountinfo.find('\n');
    const std::string_view line = mountinfo.substr(0, newline);
    mountinfo.remove_prefix(newline == std::string_view::npos ? mountinfo.size() : newline + 1);
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
    const std::vector<std::string_view> f = fields(line);
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") {
      ++dash;
    }
    if (dash + 1 < f.size() && f[dash + 1] == "cgroup2") {
      return unescape_mount_path(f[4]);
    }
  }
  return std::nullopt;
}

std::optional<std::string> find_cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cgroup2_mount(text.str());
}

std::unordered_map<std::uint64_t, std::string>
find_cgroup_paths(const std::string& mount, const std::unordered_set<std::uint64_t>& ids) {
  std::unordered_map<std::uint64_t, std::string> found;
  UniqueFd root(::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  struct stat st {};
  if (ids.empty() || !root || ::fstat(root.get(), &st) != 0) {
    return found;
  }
  if (ids.contains(st.st_ino)) {
    found.emplace(st.st_ino, "/");
  }
  walk(root.get(), "/", 1, ids, found);
  return found;
}

std::optional<std::uint32_t> parse_proc_stat_ppid(std::string_view text) {
  // "PID (COMM) STATE PPID ...": the comm ends at the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) {
    return std::nullopt;
  }
  const std::vector<std::string_view> rest = fields(text.substr(close + 1));
  if (rest.size() < 2) {
    return std::nullopt;
  }
  std::uint32_t ppid = 0;
  auto [end, ec] = std::from_chars(rest[1].data(), rest[1].data() + rest[1].size(), ppid);
  if (ec != std::errc() || end != rest[1].data() + rest[1].size()) {
    return std::nullopt;
  }
  return ppid;
}

std::optional<ProcessIdentity> read_process(std::uint32_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  std::optional<std::uint32_t> ppid;
  try {
    ppid = parse_proc_stat_ppid(read_small_file((dir + "/stat").c_str(), "identity"));
  } catch (const std::system_error&) {
    return std::nullopt;
  }
  if (!ppid) {
    return std::nullopt;
  }
  ProcessIdentity identity;
  identity.ppid = *ppid;
  std::array<char, 4096> exe{};
  const ssize_t len = ::readlink((dir + "/exe").c_str(), exe.data(), exe.size());
  if (len > 0 && static_cast<std::size_t>(len) < exe.size()) {
    identity.exe.assign(exe.data(), static_cast<std::size_t>(len));
  }
  return identity;
}

std::string host_name() {
  std::array<char, 256> name{};  // HOST_NAME_MAX is 64 on Linux
  if (::gethostname(name.data(), name.size() - 1) != 0) {
    return {};
  }
  return name.data();
}

std::string boot_id() {
  try {
    std::string id = read_small_file("/proc/sys/kernel/random/boot_id", "boot id");
    while (!id.empty() && (id.back() == '\n' || id.back() == '\0')) {
      id.pop_back();
    }
    return id;
  } catch (const std::system_error&) {
    return {};
  }
}

}  // namespace tcptrail::sys
