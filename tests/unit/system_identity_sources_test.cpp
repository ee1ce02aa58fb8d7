#include "system/identity_sources.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tcptrail::sys {
namespace {

TEST(Cgroup2Mount, FindsTheCgroup2LineAmongV1Hierarchies) {
  const std::string mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(parse_cgroup2_mount(mountinfo), "/sys/fs/cgroup/unified");
}

TEST(Cgroup2Mount, DecodesEscapesAndOptionalFields) {
  EXPECT_EQ(parse_cgroup2_mount("29 1 0:26 / /mnt/my\\040cgroups rw shared:4 master:1 - cgroup2 "
                                "cgroup2 rw,nsdelegate\n"),
            "/mnt/my cgroups");
  EXPECT_EQ(parse_cgroup2_mount("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"),
            "/sys/fs/cgroup");
}

TEST(Cgroup2Mount, NoneWithoutACgroup2Line) {
  EXPECT_EQ(parse_cgroup2_mount("22 1 0:21 / /proc rw - proc proc rw\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup2_mount("41 31 0:38 / /x rw cgroup2\n"), std::nullopt);
  EXPECT_EQ(parse_cgroup2_mount(""), std::nullopt);
}

TEST(Cgroup2Mount, ThisMachineHasOne) {
  const std::optional<std::string> mount = find_cgroup2_mount();
  ASSERT_TRUE(mount);
  EXPECT_TRUE(std::filesystem::exists(*mount + "/cgroup.procs")) << *mount;
}

TEST(ProcStat, ParentAfterACommWithSpacesAndParentheses) {
  EXPECT_EQ(parse_proc_stat_ppid("1234 (php-fpm: pool) S 1200 1234 1234 0 -1"), 1200U);
  EXPECT_EQ(parse_proc_stat_ppid("1234 (a) b) S 77 1234"), 77U);
  EXPECT_EQ(parse_proc_stat_ppid("1234 (x) S"), std::nullopt);
  EXPECT_EQ(parse_proc_stat_ppid("1234 (x) S -1 0"), std::nullopt);
  EXPECT_EQ(parse_proc_stat_ppid("garbage"), std::nullopt);
}

TEST(ReadProcess, ThisProcess) {
  const std::optional<ProcessIdentity> self = read_process(static_cast<std::uint32_t>(getpid()));
  ASSERT_TRUE(self);
  EXPECT_EQ(self->ppid, static_cast<std::uint32_t>(getppid()));
  EXPECT_EQ(self->exe, std::filesystem::read_symlink("/proc/self/exe").string());
  EXPECT_EQ(read_process(0), std::nullopt);
}

TEST(HostIdentity, HostNameAndBootIdOfThisMachine) {
  std::array<char, 256> name{};
  ASSERT_EQ(::gethostname(name.data(), name.size() - 1), 0);
  EXPECT_EQ(host_name(), name.data());
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string expected;
  std::getline(in, expected);
  EXPECT_EQ(boot_id(), expected);
  EXPECT_EQ(boot_id().size(), 36U);  // a UUID
}

std::uint64_t inode_of(const std::filesystem::path& dir) {
  struct stat st {};
  EXPECT_EQ(::stat(dir.c_str(), &st), 0) << dir;
  return st.st_ino;
}

// The walk matches directory inodes as the kernel's cgroup ids are matched under the mount; a
// temporary tree stands in for the mount.
TEST(CgroupPaths, FindsDirectoriesByInode) {
  char tmpl[] = "/tmp/tcptrail-cgroups-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path root = tmpl;
  std::filesystem::create_directories(root / "system.slice/nginx.service");
  std::filesystem::create_directories(root / "kubepods/burstable/pod1/abc");
  std::ofstream(root / "system.slice/cgroup.procs") << "";
  const std::uint64_t nginx = inode_of(root / "system.slice/nginx.service");
  const std::uint64_t abc = inode_of(root / "kubepods/burstable/pod1/abc");
  const std::uint64_t top = inode_of(root);
  const std::uint64_t gone = inode_of(root / "kubepods") + 1'000'000;

  const auto paths = find_cgroup_paths(root.string(), {nginx, abc, top, gone});
  EXPECT_EQ(paths.size(), 3U);
  EXPECT_EQ(paths.at(nginx), "/system.slice/nginx.service");
  EXPECT_EQ(paths.at(abc), "/kubepods/burstable/pod1/abc");
  EXPECT_EQ(paths.at(top), "/");
  EXPECT_FALSE(paths.contains(gone));
  EXPECT_TRUE(find_cgroup_paths((root / "missing").string(), {nginx}).empty());
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace tcptrail::sys
