// The README's capability list against the binary, each capability dropped in turn (setpriv,
// root's uid kept): what is needed to run, what each missing one costs (a warning and the start
// record's "degraded"), and what the tracer keeps once attached.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

struct Outcome {
  RunResult run;
  std::vector<Json> records;
};

// `setpriv <caps> tcptrail --json -d 300ms`, its records parsed from stdout.
Outcome run_with(const std::string& bounding_set) {
  Outcome o{run({"setpriv", "--bounding-set=" + bounding_set, "--inh-caps=-all", tcptrail_binary(),
                 "--json", "-d", "300ms"}),
            {}};
  for (const std::string& line : split_lines(o.run.out)) {
    o.records.push_back(Json::parse(line, nullptr, false));
  }
  return o;
}

TEST(CapabilitiesTest, LoadingNeedsBpfAndPerfmonOrSysAdmin) {
  TT_REQUIRE_KERNEL();
  for (const char* set : {"-all,+bpf,+perfmon", "-all,+sys_admin"}) {
    const Outcome o = run_with(set);
    EXPECT_EQ(o.run.status.exit_code, 0) << set << ": " << o.run.err;
    ASSERT_GE(o.records.size(), 2U) << set;
    EXPECT_EQ(o.records.back()["type"], "stop") << set;
  }
  for (const char* set : {"-all,+bpf", "-all,+perfmon", "-bpf,-sys_admin", "-perfmon,-sys_admin"}) {
    const Outcome o = run_with(set);
    EXPECT_EQ(o.run.status.exit_code, 1) << set;
    EXPECT_EQ(split_lines(o.run.err).size(), 1U) << set << ": " << o.run.err;
    EXPECT_NE(o.run.err.find("CAP_BPF and CAP_PERFMON"), std::string::npos) << o.run.err;
    EXPECT_TRUE(o.run.out.empty()) << set;
  }
}

TEST(CapabilitiesTest, EachOptionalCapabilityDroppedCostsWhatTheReadmeSays) {
  TT_REQUIRE_KERNEL();
  struct Case {
    const char* set;
    std::vector<std::string> degraded;
  };
  const std::vector<Case> cases = {
      {"+all", {}},
      {"-sys_admin", {"netns"}},
      {"-sys_ptrace", {"netns", "owners"}},
      {"-dac_read_search", {"owners"}},
      // Not needed (the README once listed it for sock_diag): nothing is lost.
      {"-net_admin", {}},
      {"-all,+bpf,+perfmon", {"netns", "owners"}},
  };
  // What this kernel cannot give comes after what the capabilities cost, a line each too.
  const std::vector<std::string> gaps = kernel_gaps();
  for (const Case& c : cases) {
    const Outcome o = run_with(c.set);
    EXPECT_EQ(o.run.status.exit_code, 0) << c.set << ": " << o.run.err;
    ASSERT_FALSE(o.records.empty()) << c.set;
    std::vector<std::string> degraded = c.degraded;
    degraded.insert(degraded.end(), gaps.begin(), gaps.end());
    EXPECT_EQ(o.records.front()["degraded"], Json(degraded)) << c.set;
    const std::vector<std::string> lines = split_lines(o.run.err);
    ASSERT_EQ(lines.size(), degraded.size()) << c.set << ": " << o.run.err;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const char* prefix = i < c.degraded.size() ? "tcptrail: warning: without CAP_"
                                                 : "tcptrail: warning: this kernel cannot give ";
      EXPECT_EQ(lines[i].rfind(prefix, 0), 0U) << lines[i];
    }
  }
}

// Once attached, only what the sweeps use is left, and nothing can be regained.
TEST(CapabilitiesTest, AttachedTracerKeepsOnlyWhatItUses) {
  TT_REQUIRE_KERNEL();
  Tracer tracer({});
  std::ifstream status("/proc/" + std::to_string(tracer.process().pid()) + "/status");
  std::string line;
  std::string effective;
  std::string bounding;
  std::string no_new_privs;
  while (std::getline(status, line)) {
    const std::string value = line.substr(line.find(':') + 1);
    const std::size_t begin = value.find_first_not_of(" \t");
    const std::string trimmed = begin == std::string::npos ? "" : value.substr(begin);
    if (line.rfind("CapEff:", 0) == 0) {
      effective = trimmed;
    } else if (line.rfind("CapBnd:", 0) == 0) {
      bounding = trimmed;
    } else if (line.rfind("NoNewPrivs:", 0) == 0) {
      no_new_privs = trimmed;
    }
  }
  const unsigned long long kept =
      1uLL << CAP_SYS_ADMIN | 1uLL << CAP_SYS_PTRACE | 1uLL << CAP_DAC_READ_SEARCH;
  EXPECT_EQ(std::stoull(effective, nullptr, 16), kept) << effective;
  EXPECT_EQ(std::stoull(bounding, nullptr, 16), kept) << bounding;
  EXPECT_EQ(no_new_privs, "1");
  const Tracer::Stopped stopped = tracer.stop(SIGINT);
  EXPECT_EQ(stopped.status.exit_code, 0) << stopped.err;
}

// Each value that once slipped through, refused by the binary: exit 2, one line, no output.
TEST(CapabilitiesTest, StrictInputIsRefusedBeforeAnythingRuns) {
  const std::vector<std::vector<std::string>> bad = {
      {"--time-wait-warn", "nan"},
      {"--time-wait-warn", "inf"},
      {"-d", ""},
      {"--port", "0x1356"},
      {"--port", "+80"},
      {"--port", " 80"},
      {"-o", ""},
      {"--comm", "0123456789abcdef"},
      {"--addr", "10.0.0.1/24"},
      {"--comm", "-d", "1s"},
      {"--output-mode", "0777"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {tcptrail_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = run(argv, 5s);
    EXPECT_EQ(r.status.exit_code, 2) << args[0] << " '" << args[1] << "': " << r.err;
    EXPECT_EQ(split_lines(r.err).size(), 1U) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

}  // namespace
}  // namespace tt
