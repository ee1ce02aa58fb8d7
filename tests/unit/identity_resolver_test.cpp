#include "cli/identity_resolver.hpp"

#include "tcptrail/records.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

namespace tcptrail {
namespace {

constexpr std::uint64_t kNow = 1'000'000'000;

// Installs until the resolver thread has answered, or fails after 5 s.
void wait_for_answers(IdentityResolver& resolver, std::uint64_t now_ns) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!resolver.install(now_ns)) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no answer from the resolver";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

class IdentityResolverTest : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcptrail-resolver-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::uint64_t make_cgroup(const std::string& path) {
    std::filesystem::create_directories(root_ / path.substr(1));
    struct stat st {};
    EXPECT_EQ(::stat((root_ / path.substr(1)).c_str(), &st), 0);
    return st.st_ino;
  }

  std::filesystem::path root_;
};

TEST_F(IdentityResolverTest, AnswersPendingThenTheParsedPath) {
  const std::string kId(64, 'a');
  const std::uint64_t id = make_cgroup("/system.slice/docker-" + kId + ".scope");
  IdentityResolver resolver(root_.string());
  resolver.start();
  const IdentityAnswer<CgroupIdentity> first = resolver.cgroup(id);
  EXPECT_TRUE(first.pending);
  EXPECT_EQ(first.value, nullptr);
  wait_for_answers(resolver, kNow);
  const IdentityAnswer<CgroupIdentity> answer = resolver.cgroup(id);
  EXPECT_FALSE(answer.pending);
  ASSERT_NE(answer.value, nullptr);
  EXPECT_EQ(answer.value->container_id, kId);
  EXPECT_EQ(answer.value->unit, "docker-" + kId + ".scope");
}

TEST_F(IdentityResolverTest, ARemovedCgroupCannotBeKnown) {
  const std::uint64_t id = make_cgroup("/gone.scope");
  std::filesystem::remove(root_ / "gone.scope");
  IdentityResolver resolver(root_.string());
  resolver.start();
  EXPECT_TRUE(resolver.cgroup(id).pending);
  wait_for_answers(resolver, kNow);
  const IdentityAnswer<CgroupIdentity> answer = resolver.cgroup(id);
  EXPECT_FALSE(answer.pending);
  EXPECT_EQ(answer.value, nullptr);
}

TEST_F(IdentityResolverTest, WithoutAMountNoCgroupCanBeKnown) {
  IdentityResolver resolver(std::nullopt);
  resolver.start();
  EXPECT_TRUE(resolver.cgroup(1).pending);
  wait_for_answers(resolver, kNow);
  EXPECT_FALSE(resolver.cgroup(1).pending);
  EXPECT_EQ(resolver.cgroup(1).value, nullptr);
}

TEST_F(IdentityResolverTest, ProcessesAreAskedAgainOnceTheirAnswerIsOld) {
  IdentityResolver resolver(root_.string());
  resolver.start();
  const auto pid = static_cast<std::uint32_t>(getpid());
  EXPECT_TRUE(resolver.process(pid, kNow).pending);
  wait_for_answers(resolver, kNow);
  const IdentityAnswer<ProcessIdentity> answer = resolver.process(pid, kNow);
  ASSERT_NE(answer.value, nullptr);
  EXPECT_EQ(answer.value->ppid, static_cast<std::uint32_t>(getppid()));
  EXPECT_FALSE(answer.value->exe.empty());
  EXPECT_FALSE(resolver.process(pid, kNow + IdentityResolver::kProcessTtlNs - 1).pending);
  EXPECT_TRUE(resolver.process(pid, kNow + IdentityResolver::kProcessTtlNs).pending);
}

// wait_for_answers installs with the real clock, so the questions here use it too.
TEST_F(IdentityResolverTest, WaitForAnswersInstallsThem) {
  IdentityResolver resolver(root_.string());
  resolver.start();
  const std::uint64_t id = make_cgroup("/nginx.service");
  EXPECT_TRUE(resolver.cgroup(id).pending);
  EXPECT_TRUE(resolver.process(static_cast<std::uint32_t>(getpid()), monotonic_ns()).pending);
  resolver.wait_for_answers(5'000'000'000);
  ASSERT_NE(resolver.cgroup(id).value, nullptr);
  EXPECT_EQ(resolver.cgroup(id).value->unit, "nginx.service");
  EXPECT_FALSE(resolver.process(static_cast<std::uint32_t>(getpid()), monotonic_ns()).pending);
}

TEST_F(IdentityResolverTest, WithoutItsThreadNothingIsWaitedFor) {
  IdentityResolver resolver(root_.string());
  EXPECT_TRUE(resolver.cgroup(1).pending);
  const std::uint64_t before = monotonic_ns();
  resolver.wait_for_answers(5'000'000'000);
  EXPECT_LT(monotonic_ns() - before, 1'000'000'000U);
  EXPECT_TRUE(resolver.cgroup(1).pending);
}

// Asked again after it exited, a process keeps the identity read while it ran.
TEST_F(IdentityResolverTest, AnExitedProcessKeepsWhatWasRead) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const auto pid = static_cast<std::uint32_t>(child);
  std::optional<ProcessIdentity> while_running;
  std::uint64_t later = 0;
  {
    IdentityResolver resolver(root_.string());
    resolver.start();
    resolver.process(pid, monotonic_ns());
    resolver.wait_for_answers(5'000'000'000);
    const IdentityAnswer<ProcessIdentity> first = resolver.process(pid, monotonic_ns());
    if (first.value != nullptr) {
      while_running = *first.value;
    }
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    later = monotonic_ns() + IdentityResolver::kProcessTtlNs;
    EXPECT_TRUE(resolver.process(pid, later).pending);
    resolver.wait_for_answers(5'000'000'000);
    const IdentityAnswer<ProcessIdentity> answer = resolver.process(pid, later);
    EXPECT_FALSE(answer.pending);
    ASSERT_NE(answer.value, nullptr);
    EXPECT_EQ(answer.value->ppid, static_cast<std::uint32_t>(getpid()));
    EXPECT_EQ(answer.value->exe, while_running ? while_running->exe : "(not read)");
    // One never read while it ran cannot be known: no pid reaches PID_MAX_LIMIT (2^22).
    constexpr std::uint32_t kNoSuchPid = 1U << 22;
    EXPECT_TRUE(resolver.process(kNoSuchPid, later).pending);
    resolver.wait_for_answers(5'000'000'000);
    EXPECT_FALSE(resolver.process(kNoSuchPid, later).pending);
    EXPECT_EQ(resolver.process(kNoSuchPid, later).value, nullptr);
  }
  ASSERT_TRUE(while_running);
}

TEST_F(IdentityResolverTest, KeepsAtMostItsCapacity) {
  IdentityResolver resolver(root_.string(), 2);
  resolver.start();
  const std::uint64_t a = make_cgroup("/a.scope");
  const std::uint64_t b = make_cgroup("/b.scope");
  const std::uint64_t c = make_cgroup("/c.scope");
  for (const std::uint64_t id : {a, b, c}) {
    resolver.cgroup(id);
    wait_for_answers(resolver, kNow);
  }
  EXPECT_EQ(resolver.cgroups_cached(), 2U);
  EXPECT_TRUE(resolver.cgroup(a).pending);  // the oldest was forgotten
  EXPECT_FALSE(resolver.cgroup(c).pending);
}

}  // namespace
}  // namespace tcptrail
