#include "tcptrail/identity.hpp"

#include <gtest/gtest.h>

#include <string>

namespace tcptrail {
namespace {

const std::string kId = "4f1d3b9a0c2e8d7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

TEST(CgroupPath, DockerWithTheSystemdDriver) {
  const CgroupIdentity id = parse_cgroup_path("/system.slice/docker-" + kId + ".scope");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, "");
  EXPECT_EQ(id.unit, "docker-" + kId + ".scope");
  EXPECT_EQ(id.path, "/system.slice/docker-" + kId + ".scope");
}

TEST(CgroupPath, DockerWithTheCgroupfsDriver) {
  const CgroupIdentity id = parse_cgroup_path("/docker/" + kId);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.unit, "");
}

TEST(CgroupPath, ContainerdUnderAKubepodsSlice) {
  const CgroupIdentity id = parse_cgroup_path(
      "/kubepods.slice/kubepods-besteffort.slice/"
      "kubepods-besteffort-pod0c5f1b2e_6f0a_4a52_9d3c_2b8e7f1a4c6d.slice/cri-containerd-" +
      kId + ".scope");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, "0c5f1b2e-6f0a-4a52-9d3c-2b8e7f1a4c6d");
  EXPECT_EQ(id.unit, "cri-containerd-" + kId + ".scope");
}

TEST(CgroupPath, CrioInAGuaranteedPod) {
  const CgroupIdentity id = parse_cgroup_path(
      "/kubepods.slice/kubepods-pod9a8b7c6d_5e4f_3a2b_1c0d_e9f8a7b6c5d4.slice/crio-" + kId +
      ".scope");
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4");
}

TEST(CgroupPath, ConmonIsNotTheContainer) {
  const CgroupIdentity id = parse_cgroup_path(
      "/kubepods.slice/kubepods-pod9a8b7c6d_5e4f_3a2b_1c0d_e9f8a7b6c5d4.slice/crio-conmon-" + kId +
      ".scope");
  EXPECT_EQ(id.container_id, "");
  EXPECT_EQ(id.pod_uid, "9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4");
  EXPECT_EQ(id.unit, "crio-conmon-" + kId + ".scope");
}

TEST(CgroupPath, KubepodsWithTheCgroupfsDriver) {
  const CgroupIdentity id =
      parse_cgroup_path("/kubepods/burstable/pod0c5f1b2e-6f0a-4a52-9d3c-2b8e7f1a4c6d/" + kId);
  EXPECT_EQ(id.container_id, kId);
  EXPECT_EQ(id.pod_uid, "0c5f1b2e-6f0a-4a52-9d3c-2b8e7f1a4c6d");
  EXPECT_EQ(id.unit, "");
}

TEST(CgroupPath, PodmanRootfulAndRootless) {
  EXPECT_EQ(parse_cgroup_path("/machine.slice/libpod-" + kId + ".scope").container_id, kId);
  const CgroupIdentity rootless =
      parse_cgroup_path("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId +
                        ".scope/container");
  EXPECT_EQ(rootless.container_id, kId);
  EXPECT_EQ(rootless.unit, "libpod-" + kId + ".scope");
  EXPECT_EQ(parse_cgroup_path("/machine.slice/libpod-conmon-" + kId + ".scope").container_id, "");
}

TEST(CgroupPath, SystemdServicesAndSessions) {
  EXPECT_EQ(parse_cgroup_path("/system.slice/nginx.service").unit, "nginx.service");
  EXPECT_EQ(parse_cgroup_path("/system.slice/system-getty.slice/getty@tty1.service").unit,
            "getty@tty1.service");
  const CgroupIdentity session = parse_cgroup_path("/user.slice/user-1000.slice/session-3.scope");
  EXPECT_EQ(session.unit, "session-3.scope");
  EXPECT_EQ(session.container_id, "");
  EXPECT_EQ(parse_cgroup_path("/").unit, "");
  EXPECT_EQ(parse_cgroup_path("/user.slice").unit, "");
}

// Names a local user may create in a delegated subtree do not pass for ids unless they have
// the shape the runtimes give them.
TEST(CgroupPath, RejectsIdsOfTheWrongShape) {
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker-abc.scope").container_id, "");
  EXPECT_EQ(parse_cgroup_path("/system.slice/docker-" + kId + "0.scope").container_id, "");
  std::string upper = kId;
  upper[0] = 'F';
  EXPECT_EQ(parse_cgroup_path("/docker/" + upper).container_id, "");
  EXPECT_EQ(parse_cgroup_path("/elsewhere/" + kId).container_id, "");
  EXPECT_EQ(parse_cgroup_path("/pod0c5f1b2e").pod_uid, "");  // not under kubepods
  EXPECT_EQ(parse_cgroup_path("/kubepods.slice/kubepods-podxyz.slice").pod_uid, "");
}

TEST(IdentityOptions, ContainerIdOrPrefix) {
  EXPECT_TRUE(is_container_id_or_prefix(kId));
  EXPECT_TRUE(is_container_id_or_prefix(kId.substr(0, 12)));
  EXPECT_FALSE(is_container_id_or_prefix(kId.substr(0, 11)));
  EXPECT_FALSE(is_container_id_or_prefix(kId.substr(0, 13)));
  EXPECT_FALSE(is_container_id_or_prefix("4F1D3B9A0C2E"));
  EXPECT_FALSE(is_container_id_or_prefix("4f1d3b9a0c2g"));
  EXPECT_FALSE(is_container_id_or_prefix(""));
}

TEST(IdentityOptions, UnitName) {
  EXPECT_TRUE(is_unit_name("nginx.service"));
  EXPECT_TRUE(is_unit_name("getty@tty1.service"));
  EXPECT_TRUE(is_unit_name("session-3.scope"));
  EXPECT_FALSE(is_unit_name("nginx"));
  EXPECT_FALSE(is_unit_name(".service"));
  EXPECT_FALSE(is_unit_name("user.slice"));
  EXPECT_FALSE(is_unit_name("a/b.service"));
  EXPECT_FALSE(is_unit_name("a b.service"));
  EXPECT_FALSE(is_unit_name("\x1b[31m.service"));
  EXPECT_FALSE(is_unit_name(std::string(250, 'a') + ".service"));
}

}  // namespace
}  // namespace tcptrail
