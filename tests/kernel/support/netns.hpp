// Two network namespaces joined by a veth pair, for traffic that must cross a "real" link (loss,
// dropped SYNs). Only private addresses, only inside namespaces the test created; both are
// deleted on destruction, also when the test failed.
#pragma once

#include <string>
#include <vector>

namespace tt {

class NetnsPair {
public:
  // `tag` names the namespaces: tt-<tag>-<pid>-c (client side) and tt-<tag>-<pid>-s (server
  // side). Addresses: 10.X.Y.1 in the client namespace, 10.X.Y.2 in the server namespace.
  // Throws std::runtime_error (with the failing command) when set-up fails.
  explicit NetnsPair(const std::string& tag);
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;
  ~NetnsPair();

  [[nodiscard]] const std::string& client_ns() const { return client_ns_; }
  [[nodiscard]] const std::string& server_ns() const { return server_ns_; }
  [[nodiscard]] const std::string& client_addr() const { return client_addr_; }
  [[nodiscard]] const std::string& server_addr() const { return server_addr_; }

  // Runs a command (e.g. iptables, sysctl) inside one of the namespaces; throws if it fails.
  static void exec(const std::string& ns, const std::vector<std::string>& argv);

private:
  std::string client_ns_;
  std::string server_ns_;
  std::string client_addr_;
  std::string server_addr_;
};

// Deletes namespaces named tt-*-<pid>-{c,s} whose test process no longer exists (left behind by
// a runner that was killed).
void remove_stale_namespaces();

}  // namespace tt
