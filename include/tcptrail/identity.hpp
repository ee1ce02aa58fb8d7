// Who a socket belongs to beyond its pid: the container, pod and systemd unit of its cgroup,
// and the parent and executable of its owner. Resolved off the ring thread (system/identity_*)
// and attached to records by the identity stage (sinks/identity_stage.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tcptrail {

// What a cgroup v2 path says about the workload in it. Empty strings mean "none in the path".
struct CgroupIdentity {
  std::string path;          // relative to the cgroup2 mount: "/system.slice/nginx.service"
  std::string container_id;  // 64 lowercase hex digits (docker, containerd, CRI-O, podman)
  std::string pod_uid;       // Kubernetes pod UID, with dashes ("_" in systemd slice names)
  std::string unit;          // the last "*.service" or "*.scope" component
};

// Parses the names docker, containerd, CRI-O, podman, kubelet and systemd give cgroups, with
// the systemd and the cgroupfs drivers. The deepest container and pod components win.
CgroupIdentity parse_cgroup_path(std::string_view path);

// The owner of a connection as /proc described it while it ran.
struct ProcessIdentity {
  std::uint32_t ppid = 0;
  std::string exe;  // the target of /proc/PID/exe; "" if it could not be read
};

// An answer from the identity caches. value is valid until the next call that may install
// answers (IdentityLookup::install); null with pending true means asked and not yet answered,
// null with pending false means it cannot be known (the cgroup or the process is gone).
template <typename T> struct IdentityAnswer {
  const T* value = nullptr;
  bool pending = false;
};

// The ring thread's view of the caches: never blocks. A lookup that misses asks the resolver
// and answers pending.
class IdentityLookup {
public:
  virtual ~IdentityLookup() = default;
  virtual IdentityAnswer<CgroupIdentity> cgroup(std::uint64_t cgroup_id) = 0;
  virtual IdentityAnswer<ProcessIdentity> process(std::uint32_t pid, std::uint64_t now_ns) = 0;
  // Waits until every question asked has its answer installed, or timeout_ns has passed: for
  // the end of a run only, once the rings are drained.
  virtual void wait_for_answers(std::uint64_t timeout_ns) = 0;
};

// What a record says of its socket's workload. Null: not known (no cgroup id from the kernel,
// the cgroup or the process gone before it was resolved, or not resolved in time). Valid while
// the record is being written.
struct Identity {
  const CgroupIdentity* cgroup = nullptr;
  const ProcessIdentity* process = nullptr;  // of the owner; in connection records only
};

// Whether text is what --container accepts: a full container id (64 lowercase hex digits) or
// the 12-digit prefix docker and crictl print.
bool is_container_id_or_prefix(std::string_view text);
// Whether text is a systemd unit name --unit accepts: "NAME.service" or "NAME.scope", at most
// 255 bytes, of the characters systemd allows in unit names.
bool is_unit_name(std::string_view text);

}  // namespace tcptrail
