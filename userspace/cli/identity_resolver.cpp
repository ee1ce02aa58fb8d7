#include "cli/identity_resolver.hpp"

#include <pthread.h>
#include <signal.h>

#include <chrono>

#include "system/identity_sources.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

namespace {

// Inserts or replaces key's answer; beyond capacity the oldest key is forgotten.
template <typename Map, typename Key, typename Value>
void remember(Map& map, std::deque<Key>& order, std::size_t capacity, Key key, Value value) {
  auto [it, inserted] = map.insert_or_assign(key, std::move(value));
  if (!inserted) {
    return;
  }
  order.push_back(key);
  while (map.size() > capacity && !order.empty()) {
    map.erase(order.front());
    order.pop_front();
  }
}

}  // namespace

IdentityResolver::IdentityResolver(std::optional<std::string> cgroup_mount, std::size_t capacity)
    : mount_(std::move(cgroup_mount)), capacity_(capacity) {}

IdentityResolver::~IdentityResolver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void IdentityResolver::start() {
  thread_ = std::thread([this] { run(); });
}

IdentityAnswer<CgroupIdentity> IdentityResolver::cgroup(std::uint64_t cgroup_id) {
  if (auto found = cgroups_.find(cgroup_id); found != cgroups_.end()) {
    return {found->second ? &*found->second : nullptr, false};
  }
  if (cgroups_asked_.insert(cgroup_id).second) {
    cgroup_outbox_.push_back(cgroup_id);
    ask();
  }
  return {nullptr, true};
}

IdentityAnswer<ProcessIdentity> IdentityResolver::process(std::uint32_t pid, std::uint64_t now_ns) {
  auto found = processes_.find(pid);
  if (found != processes_.end() && now_ns < found->second.resolved_ns + kProcessTtlNs) {
    return {found->second.identity ? &*found->second.identity : nullptr, false};
  }
  if (pids_asked_.insert(pid).second) {
    pid_outbox_.push_back(pid);
    ask();
  }
  return {nullptr, true};
}

void IdentityResolver::ask() {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock) {
    return;  // the thread is handing over answers: the outbox goes with the next install()
  }
  cgroup_requests_.insert(cgroup_requests_.end(), cgroup_outbox_.begin(), cgroup_outbox_.end());
  pid_requests_.insert(pid_requests_.end(), pid_outbox_.begin(), pid_outbox_.end());
  cgroup_outbox_.clear();
  pid_outbox_.clear();
  lock.unlock();
  wake_.notify_one();
}

bool IdentityResolver::install(std::uint64_t now_ns) {
  Answers answers;
  {
    std::unique_lock lock(mutex_, std::try_to_lock);
    if (!lock) {
      return false;
    }
    std::swap(answers, ready_);
  }
  if (!cgroup_outbox_.empty() || !pid_outbox_.empty()) {
    ask();
  }
  for (auto& [id, identity] : answers.cgroups) {
    cgroups_asked_.erase(id);
    remember(cgroups_, cgroup_order_, capacity_, id, std::move(identity));
  }
  for (auto& [pid, identity] : answers.processes) {
    pids_asked_.erase(pid);
    // A process that has exited since it was read is still the one its records are about:
    // its pid was free when it was asked again, so no other process had taken it.
    auto known = processes_.find(pid);
    if (!identity && known != processes_.end() && known->second.identity) {
      known->second.resolved_ns = now_ns;
      continue;
    }
    remember(processes_, process_order_, capacity_, pid, ProcessEntry{std::move(identity), now_ns});
  }
  return !answers.cgroups.empty() || !answers.processes.empty();
}

void IdentityResolver::wait_for_answers(std::uint64_t timeout_ns) {
  if (!thread_.joinable()) {
    return;  // nothing would answer
  }
  const std::uint64_t deadline = monotonic_ns() + timeout_ns;
  while (!cgroups_asked_.empty() || !pids_asked_.empty()) {
    const std::uint64_t now = monotonic_ns();
    if (now >= deadline) {
      return;
    }
    if (!install(now)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
}

IdentityResolver::Answers IdentityResolver::resolve(const std::vector<std::uint64_t>& cgroups,
                                                    const std::vector<std::uint32_t>& pids) {
  Answers answers;
  if (!cgroups.empty()) {
    const std::unordered_set<std::uint64_t> wanted(cgroups.begin(), cgroups.end());
    // One walk answers every question asked since the last; an id not found is a cgroup that
    // was removed (cgroup ids are never reused).
    const auto paths = mount_ ? sys::find_cgroup_paths(*mount_, wanted)
                              : std::unordered_map<std::uint64_t, std::string>{};
    for (const std::uint64_t id : wanted) {
      auto path = paths.find(id);
      answers.cgroups.emplace_back(
          id, path != paths.end() ? std::optional(parse_cgroup_path(path->second)) : std::nullopt);
    }
  }
  for (const std::uint32_t pid : pids) {
    answers.processes.emplace_back(pid, sys::read_process(pid));
  }
  return answers;
}

void IdentityResolver::run() {
  // Signals are for the ring thread, whose wait they must interrupt.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock,
               [this] { return stopping_ || !cgroup_requests_.empty() || !pid_requests_.empty(); });
    if (stopping_) {
      return;
    }
    const std::vector<std::uint64_t> cgroups = std::exchange(cgroup_requests_, {});
    const std::vector<std::uint32_t> pids = std::exchange(pid_requests_, {});
    lock.unlock();
    Answers answers = resolve(cgroups, pids);
    lock.lock();
    std::move(answers.cgroups.begin(), answers.cgroups.end(), std::back_inserter(ready_.cgroups));
    std::move(answers.processes.begin(), answers.processes.end(),
              std::back_inserter(ready_.processes));
  }
}

}  // namespace tcptrail
