#include "sinks/identity_stage.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tcptrail {
namespace {

constexpr std::uint64_t kMs = 1'000'000;
const std::string kId = std::string("abcdef012345") + std::string(52, '0');

// Answers only what the test installed; everything else is pending.
class FakeLookup : public IdentityLookup {
public:
  IdentityAnswer<CgroupIdentity> cgroup(std::uint64_t id) override {
    ++cgroup_questions[id];
    auto found = cgroups.find(id);
    if (found == cgroups.end()) {
      return {nullptr, true};
    }
    return {found->second ? &*found->second : nullptr, false};
  }
  IdentityAnswer<ProcessIdentity> process(std::uint32_t pid, std::uint64_t /*now_ns*/) override {
    auto found = processes.find(pid);
    if (found == processes.end()) {
      return {nullptr, true};
    }
    return {&found->second, false};
  }
  void wait_for_answers(std::uint64_t timeout_ns) override {
    waited_ns = timeout_ns;
    cgroups.insert(at_exit.begin(), at_exit.end());
  }

  std::map<std::uint64_t, std::optional<CgroupIdentity>> cgroups;
  std::map<std::uint64_t, std::optional<CgroupIdentity>> at_exit;  // answered while waiting
  std::map<std::uint32_t, ProcessIdentity> processes;
  std::map<std::uint64_t, int> cgroup_questions;
  std::uint64_t waited_ns = 0;
};

// What reached the sink, with the identity each record carried, as text.
class Log : public RecordSink {
public:
  void write(const Record& record) override {
    std::visit(
        [this](const auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, ConnectionRecord>) {
            lines.push_back("connection " + std::to_string(r.conn.conn_id) + " " +
                            (r.identity.cgroup ? r.identity.cgroup->container_id : "?") + " " +
                            (r.identity.process ? r.identity.process->exe : "?"));
          } else if constexpr (std::is_same_v<T, StateRecord>) {
            lines.push_back("state " + std::to_string(r.conn.conn_id) + " " +
                            (r.identity.cgroup ? r.identity.cgroup->unit : "?"));
          } else if constexpr (std::is_same_v<T, TimeWaitPressureRecord>) {
            lines.emplace_back("time_wait");
          } else if constexpr (std::is_same_v<T, StopRecord>) {
            lines.push_back("stop late=" + std::to_string(r.info.identity_late));
          } else if constexpr (std::is_same_v<T, StartRecord>) {
            lines.emplace_back("start");
          }
        },
        record);
  }
  void flush() override { lines.emplace_back("flush"); }
  std::vector<std::string> lines;
};

CgroupIdentity container(const std::string& id, const std::string& unit) {
  CgroupIdentity c;
  c.path = "/system.slice/" + unit;
  c.container_id = id;
  c.unit = unit;
  return c;
}

Connection conn(std::uint64_t id, std::uint64_t cgroup, std::uint32_t pid) {
  Connection c;
  c.conn_id = id;
  c.cgroup_id = cgroup;
  c.owner.pid = pid;
  return c;
}

class IdentityStageTest : public ::testing::Test {
protected:
  IdentityStage stage(const Filter& filter) {
    return IdentityStage(log, lookup, filter, [this] { return now; });
  }
  FakeLookup lookup;
  Log log;
  std::uint64_t now = 1000 * kMs;
  Filter no_filter;
};

TEST_F(IdentityStageTest, KnownIdentitiesPassAtOnce) {
  lookup.cgroups[7] = container(kId, "docker-x.scope");
  lookup.processes[42] = {1, "/usr/sbin/php-fpm8.2"};
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 42), 0});
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 " + kId + " /usr/sbin/php-fpm8.2"}));
  EXPECT_EQ(s.held(), 0U);
}

// A record waits for its answers, and every record after it waits too: order is kept.
TEST_F(IdentityStageTest, HoldsUntilAnsweredAndKeepsOrder) {
  lookup.cgroups[8] = container("", "nginx.service");
  lookup.processes[42] = {1, "/usr/bin/curl"};
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 42), 0});  // cgroup 7 not answered yet
  s.write(StateRecord{conn(2, 8, 0), TcpState::kSynSent, TcpState::kEstablished, 0, true, 0});
  EXPECT_TRUE(log.lines.empty());
  EXPECT_EQ(s.held(), 2U);
  now += 10 * kMs;
  s.release();
  EXPECT_TRUE(log.lines.empty());
  lookup.cgroups[7] = container(kId, "docker-x.scope");
  s.release();
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 " + kId + " /usr/bin/curl",
                                                 "state 2 nginx.service"}));
  EXPECT_EQ(s.late(), 0U);
}

// Questions are asked as records arrive, not when each reaches the head: the answers come
// together, and at exit every question has been asked.
TEST_F(IdentityStageTest, AsksForEveryRecordAtOnce) {
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 0), 0});
  s.write(ConnectionRecord{conn(2, 8, 0), 0});
  s.write(ConnectionRecord{conn(3, 9, 0), 0});
  EXPECT_EQ(lookup.cgroup_questions.count(8), 1U);
  EXPECT_EQ(lookup.cgroup_questions.count(9), 1U);
  EXPECT_EQ(s.held(), 3U);
}

// The held copy owns its data: the caller's connection is gone once write() returns.
TEST_F(IdentityStageTest, HeldRecordsOwnWhatTheyReferTo) {
  IdentityStage s = stage(no_filter);
  {
    Connection temporary = conn(5, 7, 0);
    s.write(ConnectionRecord{temporary, 0});
    temporary.conn_id = 999;
  }
  lookup.cgroups[7] = container(kId, "docker-x.scope");
  s.release();
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 5 " + kId + " ?"}));
}

TEST_F(IdentityStageTest, GoesOnWithoutAfterTheLongestHoldAndCountsIt) {
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 0), 0});
  now += IdentityStage::kMaxHoldNs - 1;
  s.release();
  EXPECT_TRUE(log.lines.empty());
  now += 1;
  s.release();
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 ? ?"}));
  EXPECT_EQ(s.late(), 1U);
  StopInfo info;
  s.write(StopRecord{info});
  EXPECT_EQ(log.lines.back(), "stop late=1");
}

TEST_F(IdentityStageTest, GoneIsAnAnswerNotALateRecord) {
  lookup.cgroups[7] = std::nullopt;  // removed before it was resolved
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 0), 0});
  s.write(ConnectionRecord{conn(2, 0, 0), 0});  // the kernel gave no cgroup
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 ? ?", "connection 2 ? ?"}));
  EXPECT_EQ(s.late(), 0U);
  EXPECT_EQ(lookup.cgroup_questions.count(0), 0U);
}

TEST_F(IdentityStageTest, BoundedWhatItHolds) {
  IdentityStage s = stage(no_filter);
  for (std::size_t i = 0; i <= IdentityStage::kMaxHeld; ++i) {
    s.write(ConnectionRecord{conn(i + 1, 7, 0), 0});
  }
  EXPECT_EQ(s.held(), IdentityStage::kMaxHeld);
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 ? ?"}));
  EXPECT_EQ(s.late(), 1U);
}

// At the end of the run the stage lets the resolver finish before the stop record.
TEST_F(IdentityStageTest, StopWaitsForTheAnswersThenReleasesEverything) {
  lookup.at_exit[7] = container(kId, "docker-x.scope");
  IdentityStage s = stage(no_filter);
  s.write(ConnectionRecord{conn(1, 7, 0), 0});
  s.write(ConnectionRecord{conn(2, 9, 0), 0});  // never answered
  StopInfo info;
  s.write(StopRecord{info});
  EXPECT_EQ(lookup.waited_ns, IdentityStage::kMaxHoldNs);
  EXPECT_EQ(log.lines, (std::vector<std::string>{"connection 1 " + kId + " ?", "connection 2 ? ?",
                                                 "stop late=1"}));
}

TEST_F(IdentityStageTest, ContainerFilterDropsOthersAndTheUnknown) {
  lookup.cgroups[7] = container(kId, "docker-x.scope");
  lookup.cgroups[8] = container("", "nginx.service");
  lookup.cgroups[9] = std::nullopt;
  Filter filter;
  filter.containers = {kId.substr(0, 12)};
  IdentityStage s = stage(filter);
  StartInfo start;
  s.write(StartRecord{start});
  s.write(ConnectionRecord{conn(1, 7, 0), 0});
  s.write(ConnectionRecord{conn(2, 8, 0), 0});
  s.write(ConnectionRecord{conn(3, 9, 0), 0});
  s.write(ConnectionRecord{conn(4, 0, 0), 0});
  TimeWaitPressure pressure;
  s.write(TimeWaitPressureRecord{pressure});
  StopInfo info;
  s.write(StopRecord{info});
  EXPECT_EQ(log.lines,
            (std::vector<std::string>{"start", "connection 1 " + kId + " ?", "stop late=0"}));
}

TEST_F(IdentityStageTest, UnitFilter) {
  lookup.cgroups[7] = container(kId, "docker-x.scope");
  lookup.cgroups[8] = container("", "nginx.service");
  Filter filter;
  filter.units = {"nginx.service"};
  IdentityStage s = stage(filter);
  s.write(StateRecord{conn(1, 7, 0), TcpState::kSynSent, TcpState::kEstablished, 0, true, 0});
  s.write(StateRecord{conn(2, 8, 0), TcpState::kSynSent, TcpState::kEstablished, 0, true, 0});
  TimeWaitPressure pressure;
  s.write(TimeWaitPressureRecord{pressure});
  EXPECT_EQ(log.lines, (std::vector<std::string>{"state 2 nginx.service"}));
}

TEST_F(IdentityStageTest, WithoutIdentityFiltersTimeWaitPressurePasses) {
  IdentityStage s = stage(no_filter);
  TimeWaitPressure pressure;
  s.write(TimeWaitPressureRecord{pressure});
  s.flush();
  EXPECT_EQ(log.lines, (std::vector<std::string>{"time_wait", "flush"}));
}

}  // namespace
}  // namespace tcptrail
