// Resolves cgroup ids to container, pod and unit, and pids to parent and executable, on a
// thread of its own: a walk of the cgroup tree or a read of /proc may block, and the ring
// thread never does. The ring thread asks through IdentityLookup and installs the answers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tcptrail/identity.hpp"

namespace tcptrail {

class IdentityResolver : public IdentityLookup {
public:
  // How many cgroups and how many processes each cache keeps; the oldest answers go first.
  static constexpr std::size_t kDefaultCapacity = 4096;
  // A process's answer is asked for again once it is this old: pid reuse within it is the one
  // way a record can name the wrong parent or executable.
  static constexpr std::uint64_t kProcessTtlNs = 5'000'000'000;

  // cgroup_mount: the cgroup2 mount point; without one every cgroup answers "cannot be known".
  // Questions asked before start() wait for the thread.
  explicit IdentityResolver(std::optional<std::string> cgroup_mount,
                            std::size_t capacity = kDefaultCapacity);
  ~IdentityResolver() override;  // stops and joins the thread
  // Starts the thread: after privileges are dropped, which is per thread.
  void start();
  IdentityResolver(const IdentityResolver&) = delete;
  IdentityResolver& operator=(const IdentityResolver&) = delete;

  // Ring thread only.
  IdentityAnswer<CgroupIdentity> cgroup(std::uint64_t cgroup_id) override;
  IdentityAnswer<ProcessIdentity> process(std::uint32_t pid, std::uint64_t now_ns) override;
  void wait_for_answers(std::uint64_t timeout_ns) override;
  // Takes the answers the thread has ready, if it is not handing some over right now, and
  // passes on questions that could not be handed over before. Returns whether any arrived.
  bool install(std::uint64_t now_ns);
  std::size_t cgroups_cached() const { return cgroups_.size(); }
  std::size_t processes_cached() const { return processes_.size(); }

private:
  struct ProcessEntry {
    std::optional<ProcessIdentity> identity;  // nullopt: the process was gone
    std::uint64_t resolved_ns = 0;
  };
  struct Answers {
    std::vector<std::pair<std::uint64_t, std::optional<CgroupIdentity>>> cgroups;
    std::vector<std::pair<std::uint32_t, std::optional<ProcessIdentity>>> processes;
  };

  void ask();
  void run();
  Answers resolve(const std::vector<std::uint64_t>& cgroups,
                  const std::vector<std::uint32_t>& pids);

  const std::optional<std::string> mount_;
  const std::size_t capacity_;

  // Ring thread.
  std::unordered_map<std::uint64_t, std::optional<CgroupIdentity>> cgroups_;
  std::deque<std::uint64_t> cgroup_order_;
  std::unordered_map<std::uint32_t, ProcessEntry> processes_;
  std::deque<std::uint32_t> process_order_;
  std::unordered_set<std::uint64_t> cgroups_asked_;
  std::unordered_set<std::uint32_t> pids_asked_;
  std::vector<std::uint64_t> cgroup_outbox_;
  std::vector<std::uint32_t> pid_outbox_;

  std::mutex mutex_;  // guards what follows; held only to move lists
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::uint64_t> cgroup_requests_;
  std::vector<std::uint32_t> pid_requests_;
  Answers ready_;

  std::thread thread_;
};

}  // namespace tcptrail
