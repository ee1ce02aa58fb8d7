#include "support/netns.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <iostream>
#include <stdexcept>

#include "support/process.hpp"

namespace tt {
namespace {

void delete_namespace(const std::string& name) {
  try {
    const RunResult r = run({"ip", "netns", "delete", name}, 10s);
    if (r.status.exit_code != 0 && std::filesystem::exists("/run/netns/" + name)) {
      std::cerr << "warning: ip netns delete " << name << ": " << r.err;
    }
  } catch (const std::exception& e) {
    std::cerr << "warning: " << e.what() << "\n";
  }
}

}  // namespace

void remove_stale_namespaces() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tt-", 0) != 0 || name.size() < 6) {
      continue;
    }
    const std::string rest = name.substr(0, name.size() - 2);  // drop "-c" / "-s"
    const std::size_t dash = rest.rfind('-');
    if (dash == std::string::npos) {
      continue;
    }
    const long pid = std::strtol(rest.c_str() + dash + 1, nullptr, 10);
    if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      delete_namespace(name);
    }
  }
}

void NetnsPair::exec(const std::string& ns, const std::vector<std::string>& argv) {
  run_checked(argv, ns);
}

NetnsPair::NetnsPair(const std::string& tag) {
  remove_stale_namespaces();
  const std::string base = "tt-" + tag + "-" + std::to_string(getpid());
  client_ns_ = base + "-c";
  server_ns_ = base + "-s";
  // A subnet per test and process, so records are easy to tell from other traffic.
  static int serial = 0;
  const int x = 100 + static_cast<int>(getpid() % 100);
  const int y = (serial++ % 250) + 1;
  const std::string subnet = "10." + std::to_string(x) + "." + std::to_string(y) + ".";
  client_addr_ = subnet + "1";
  server_addr_ = subnet + "2";
  try {
    for (const std::string& ns : {client_ns_, server_ns_}) {
      if (std::filesystem::exists("/run/netns/" + ns)) {
        delete_namespace(ns);
      }
      run_checked({"ip", "netns", "add", ns});
      run_checked({"ip", "-n", ns, "link", "set", "lo", "up"});
    }
    // Created inside the client namespace with its peer in the server one: the host's own
    // interfaces are never touched.
    run_checked({"ip", "-n", client_ns_, "link", "add", "tt0", "type", "veth", "peer", "name",
                 "tt1", "netns", server_ns_});
    run_checked({"ip", "-n", client_ns_, "addr", "add", client_addr_ + "/24", "dev", "tt0"});
    run_checked({"ip", "-n", server_ns_, "addr", "add", server_addr_ + "/24", "dev", "tt1"});
    // One segment per packet (no GSO batching), so a random drop costs one segment and loss
    // rates mean what they say.
    run_checked({"ip", "-n", client_ns_, "link", "set", "tt0", "gso_max_segs", "1", "up"});
    run_checked({"ip", "-n", server_ns_, "link", "set", "tt1", "gso_max_segs", "1", "up"});
  } catch (...) {
    delete_namespace(client_ns_);
    delete_namespace(server_ns_);
    throw;
  }
}

NetnsPair::~NetnsPair() {
  delete_namespace(client_ns_);
  delete_namespace(server_ns_);
}

}  // namespace tt
