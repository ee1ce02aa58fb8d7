// Identity for a fleet: real cgroup v2 directories, named as docker, containerd, CRI-O, podman,
// kubelet and systemd name them, under the host's cgroup2 mount. A client moved into each makes
// one connection; its record must name the container, pod and unit its cgroup says, its parent
// and executable, and the Community ID its peer's record has too. The cgroups are removed
// afterwards.
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

const std::string kContainer = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kPodUid = "0c5f1b2e-6f0a-4a52-9d3c-2b8e7f1a4c6d";
const std::string kPodSlice = "kubepods-besteffort-pod0c5f1b2e_6f0a_4a52_9d3c_2b8e7f1a4c6d.slice";

// The cgroup2 mount point from /proc/self/mountinfo; "" if there is none.
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string word; fields >> word;) {
      f.push_back(word);
    }
    for (std::size_t i = 6; i + 1 < f.size(); ++i) {
      if (f[i] == "-" && f[i + 1] == "cgroup2") {
        return f[4];
      }
    }
  }
  return {};
}

// Directories made under the mount, removed deepest first (each must be empty of processes:
// the test's clients have exited by then).
class Cgroups {
public:
  explicit Cgroups(std::string mount)
      : mount_(std::move(mount)), top_("tcptrail-test-" + std::to_string(getpid())) {}
  Cgroups(const Cgroups&) = delete;
  Cgroups& operator=(const Cgroups&) = delete;
  ~Cgroups() {
    // Iterators, not std::views::reverse: clang 14, which clang-tidy parses with, cannot compile
    // libstdc++ 12's range views.
    for (auto dir = made_.rbegin(); dir != made_.rend(); ++dir) {
      std::error_code ec;
      std::filesystem::remove(*dir, ec);
      EXPECT_FALSE(ec) << "rmdir " << *dir << ": " << ec.message();
    }
  }
  // Makes mount/top/relative (and its parents); returns the path relative to the mount.
  std::string make(const std::string& relative) {
    std::filesystem::path dir = mount_;
    std::string path;
    for (const auto& part : std::filesystem::path(top_ + "/" + relative)) {
      dir /= part;
      path += "/" + part.string();
      if (!std::filesystem::exists(dir)) {
        std::filesystem::create_directory(dir);
        made_.push_back(dir);
      }
    }
    return path;
  }
  void move(int pid, const std::string& path) {
    std::ofstream procs(mount_ + path + "/cgroup.procs");
    procs << pid << std::endl;
    ASSERT_TRUE(procs.good()) << "cannot move " << pid << " into " << path;
  }

private:
  std::string mount_;
  std::string top_;
  std::vector<std::filesystem::path> made_;
};

struct Shape {
  const char* runtime;
  std::string relative;  // under the test's own top cgroup
  std::string container_id;
  std::string pod_uid;
  std::string unit;
};

std::vector<Shape> shapes() {
  return {
      {"docker (systemd)", "system.slice/docker-" + kContainer + ".scope", kContainer, "",
       "docker-" + kContainer + ".scope"},
      {"docker (cgroupfs)", "docker/" + kContainer, kContainer, "", ""},
      {"containerd",
       "kubepods.slice/kubepods-besteffort.slice/" + kPodSlice + "/cri-containerd-" + kContainer +
           ".scope",
       kContainer, kPodUid, "cri-containerd-" + kContainer + ".scope"},
      {"CRI-O", "kubepods.slice/" + kPodSlice + "/crio-" + kContainer + ".scope", kContainer,
       kPodUid, "crio-" + kContainer + ".scope"},
      {"kubelet (cgroupfs)", "kubepods/burstable/pod" + kPodUid + "/" + kContainer, kContainer,
       kPodUid, ""},
      {"podman", "machine.slice/libpod-" + kContainer + ".scope", kContainer, "",
       "libpod-" + kContainer + ".scope"},
      {"systemd service", "system.slice/tt-identity.service", "", "", "tt-identity.service"},
  };
}

struct Connected {
  int pid = 0;
  int lport = 0;
  std::string path;  // its cgroup, relative to the mount
};

class IdentityTest : public ::testing::Test {
protected:
  void SetUp() override {
    TT_REQUIRE_KERNEL();
    mount_ = cgroup2_mount();
    TT_SKIP_OR_FAIL_IF(mount_.empty() ? std::string("no cgroup2 mount") : std::string());
  }

  // Starts one client per shape, each moved into its cgroup before it creates its socket,
  // under `tcptrail trace --json <args>`; returns what the tracer wrote.
  // expect_all: every client's record is to be awaited (no filter drops any). before_stop runs
  // once those records are out, with the tracer still running.
  static Tracer::Stopped run(const std::vector<std::string>& args, Cgroups& cgroups,
                             std::vector<Connected>& clients, int& server_port, bool expect_all,
                             const std::function<void()>& before_stop = {}) {
    const std::vector<Shape> all = shapes();
    Server server = start_server(
        "127.0.0.1", {"--count", std::to_string(all.size()), "--expect", "10", "--reply", "10"});
    server_port = server.port;
    std::vector<Process> peers;
    for (const Shape& shape : all) {
      peers.push_back(
          spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port),
                      "--send", "10", "--expect", "10", "--wait-stdin", "--wait-stdin-after"},
                     {}, true));
      peers.back().wait_event("ready");
      clients.push_back({peers.back().pid(), 0, cgroups.make(shape.relative)});
      cgroups.move(peers.back().pid(), clients.back().path);
    }
    Tracer tracer(args);
    for (std::size_t i = 0; i < peers.size(); ++i) {
      peers[i].write_stdin("\n");
      clients[i].lport = tcp_info(peers[i])["lport"].get<int>();
      peers[i].wait_event("done");
    }
    expect_clean_exit(server.process);
    // The clients outlive their connections, as servers and pools do, until the records are
    // out: a process already gone when its record arrives has no parent or executable to read.
    tracer.settle(
        [&](const Json& r) {
          return r["type"] == "connection" && r["rport"] == server_port &&
                 std::any_of(clients.begin(), clients.end(),
                             [&](const Connected& c) { return r["lport"] == c.lport; });
        },
        expect_all ? clients.size() : 1, 10s);
    if (before_stop) {
      before_stop();
    }
    for (Process& peer : peers) {
      peer.write_stdin("\n");
      expect_clean_exit(peer);
    }
    return tracer.stop();
  }

  std::string mount_;
};

TEST_F(IdentityTest, RecordsNameTheContainerPodUnitParentAndExecutable) {
  Cgroups cgroups(mount_);
  std::vector<Connected> clients;
  int server_port = 0;
  const Tracer::Stopped stopped = run({}, cgroups, clients, server_port, true);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  const Json start = stopped.records.front();
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  EXPECT_EQ(start["host"], host);
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string boot_id;
  std::getline(boot, boot_id);
  EXPECT_EQ(start["boot_id"], boot_id);
  for (const Json& r : stopped.records) {
    EXPECT_EQ(r["host"], host) << r;
  }

  const std::vector<Shape> all = shapes();
  for (std::size_t i = 0; i < all.size(); ++i) {
    SCOPED_TRACE(all[i].runtime);
    const Json client =
        only(stopped.records, socket_record("connection", clients[i].lport, server_port), "client");
    EXPECT_EQ(client["cgroup_path"], clients[i].path) << client;
    EXPECT_EQ(client["container_id"],
              all[i].container_id.empty() ? Json() : Json(all[i].container_id));
    EXPECT_EQ(client["pod_uid"], all[i].pod_uid.empty() ? Json() : Json(all[i].pod_uid));
    EXPECT_EQ(client["unit"], all[i].unit.empty() ? Json() : Json(all[i].unit));
    EXPECT_EQ(client["pid"], clients[i].pid);
    EXPECT_EQ(client["ppid"], getpid());
    EXPECT_EQ(client["exe"], std::filesystem::canonical(peer_binary()).string());
    // The server's end lives in the test's own cgroup, and carries the same flow hash.
    const Json server =
        only(stopped.records, socket_record("connection", server_port, clients[i].lport), "server");
    EXPECT_NE(server["cgroup_path"], clients[i].path);
    EXPECT_EQ(server["container_id"], Json());
    EXPECT_TRUE(client["community_id"].is_string());
    EXPECT_EQ(client["community_id"], server["community_id"]);
  }
  EXPECT_EQ(stopped.records.back()["identity_late"], 0) << stopped.records.back();
}

TEST_F(IdentityTest, ContainerAndUnitFilters) {
  const std::string prefix = kContainer.substr(0, 12);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--container", prefix},
        std::vector<std::string>{"--unit", "tt-identity.service"},
        std::vector<std::string>{"--container", kContainer, "--unit",
                                 "crio-" + kContainer + ".scope"}}) {
    SCOPED_TRACE(args[0] + " " + args[1]);
    Cgroups cgroups(mount_);
    std::vector<Connected> clients;
    int server_port = 0;
    const Tracer::Stopped stopped = run(args, cgroups, clients, server_port, false);
    EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
    const std::vector<Shape> all = shapes();
    for (std::size_t i = 0; i < all.size(); ++i) {
      const bool wanted = args[0] == "--unit" ? all[i].unit == args[1]
                          : args.size() > 2   ? all[i].unit == args[3]
                                              : !all[i].container_id.empty();
      EXPECT_EQ(select(stopped.records, socket_record("connection", clients[i].lport, server_port))
                    .size(),
                wanted ? 1U : 0U)
          << all[i].runtime;
      EXPECT_TRUE(
          select(stopped.records, socket_record("connection", server_port, clients[i].lport))
              .empty())
          << "the server's end is in no container or unit asked for";
    }
    for (const Json& r :
         select(stopped.records, [](const Json& r) { return r.contains("conn_id"); })) {
      EXPECT_TRUE(args[0] == "--unit" ? r["unit"] == args[1] : r["container_id"] == kContainer)
          << r;
    }
  }
}

// The sum of the connections_closed_total samples whose labels contain `label`.
double closed_with(const std::string& exposition, const std::string& label) {
  std::istringstream lines(exposition);
  double sum = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("tcptrail_connections_closed_total{") &&
        line.find(label) < line.find('}')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

// --metrics counts connections by the container (its 12-digit prefix) or, outside containers,
// the unit their cgroup names: as many as the records of the same run name.
TEST_F(IdentityTest, MetricsCountConnectionsByContainerOrUnit) {
  Cgroups cgroups(mount_);
  std::vector<Connected> clients;
  int server_port = 0;
  const int metrics_port = free_port();
  std::string exposition;
  const Tracer::Stopped stopped = run({"--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
                                      cgroups, clients, server_port, true, [&] {
                                        httplib::Client client("127.0.0.1", metrics_port);
                                        client.set_read_timeout(10);
                                        const auto response = client.Get("/metrics");
                                        ASSERT_TRUE(response && response->status == 200);
                                        exposition = response->body;
                                      });
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
  std::size_t in_container = 0;
  std::size_t in_unit = 0;
  for (const Json& r :
       select(stopped.records, [](const Json& r) { return r["type"] == "connection"; })) {
    in_container += r["container_id"] == kContainer ? 1 : 0;
    in_unit += r["container_id"].is_null() && r["unit"] == "tt-identity.service" ? 1 : 0;
  }
  const std::vector<Shape> all = shapes();
  EXPECT_EQ(in_container,
            static_cast<std::size_t>(std::count_if(
                all.begin(), all.end(), [](const Shape& s) { return !s.container_id.empty(); })));
  EXPECT_EQ(in_unit, 1U);
  EXPECT_EQ(closed_with(exposition, "container=\"" + kContainer.substr(0, 12) + "\""),
            static_cast<double>(in_container))
      << exposition;
  EXPECT_EQ(closed_with(exposition, "container=\"\",unit=\"tt-identity.service\""),
            static_cast<double>(in_unit))
      << exposition;
  EXPECT_EQ(exposition.find(kContainer), std::string::npos) << "the prefix only";
}

}  // namespace
}  // namespace tt
