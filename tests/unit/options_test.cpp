#include "cli/options.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace tcptrail {
namespace {

struct Parsed {
  Options options;
  Validated validated;
};

// Parses like main() does; throws CLI::ParseError on bad usage.
Parsed parse(std::vector<std::string> args) {
  Parsed p;
  CLI::App app;
  register_options(app, p.options);
  std::vector<const char*> argv{"tcptrail"};
  for (const std::string& a : args) {
    argv.push_back(a.c_str());
  }
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  p.validated = validate_options(p.options);
  return p;
}

TEST(ParseDuration, AcceptsUnitsAndPlainSeconds) {
  EXPECT_EQ(parse_duration("500ms"), 500'000'000u);
  EXPECT_EQ(parse_duration("30s"), 30'000'000'000u);
  EXPECT_EQ(parse_duration("2m"), 120'000'000'000u);
  EXPECT_EQ(parse_duration("1h"), 3'600'000'000'000u);
  EXPECT_EQ(parse_duration("3"), 3'000'000'000u);
  EXPECT_EQ(parse_duration("1.5s"), 1'500'000'000u);
}

TEST(ParseDuration, RejectsMalformedNegativeAndZero) {
  for (const char* bad : {"", "s", "-1s", "0", "10x", "5 s", "ms", "1e400", "nan", "--3"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(Options, DefaultIsTraceInText) {
  Parsed p = parse({});
  EXPECT_EQ(p.options.command, Command::kTrace);
  EXPECT_FALSE(p.options.json);
  EXPECT_EQ(p.validated.durations.run_ns, 0u);
  EXPECT_EQ(p.validated.durations.close_wait_ns, 30'000'000'000u);
}

TEST(Options, TraceSubcommandTakesTheSameOptions) {
  Parsed p = parse({"trace", "--json", "--transitions", "-d", "500ms", "--port", "80", "--addr",
                    "10.0.0.0/8", "-6", "-p", std::to_string(getpid())});
  EXPECT_EQ(p.options.command, Command::kTrace);
  EXPECT_TRUE(p.options.json);
  EXPECT_TRUE(p.options.transitions);
  EXPECT_EQ(p.validated.durations.run_ns, 500'000'000u);
  const Filter& f = p.validated.filter;
  EXPECT_EQ(f.family, 6);
  EXPECT_EQ(f.ports, std::vector<std::uint16_t>{80});
  EXPECT_EQ(f.pids, std::vector<std::uint32_t>{static_cast<std::uint32_t>(getpid())});
}

TEST(Options, VersionNamesTheProjectVersion) {
  try {
    parse({"--version"});
    FAIL() << "--version did not stop parsing";
  } catch (const CLI::CallForVersion& e) {
    EXPECT_EQ(std::string(e.what()), std::string("tcptrail ") + TCPTRAIL_VERSION);
    EXPECT_EQ(e.get_exit_code(), 0);
  }
}

// The host name records carry: the machine's unless given (a pod's own is the pod's name).
TEST(Options, HostNameForRecords) {
  EXPECT_EQ(parse({}).options.host, "") << "gethostname() then";
  EXPECT_EQ(parse({"--json", "--host", "node-7.example"}).options.host, "node-7.example");
  EXPECT_EQ(parse({"leaks", "--json", "--host", "node-7"}).options.host, "node-7");
  for (const std::string& bad :
       {std::string(), std::string("-x"), std::string("node\n7"), std::string(254, 'a')}) {
    EXPECT_THROW(parse({"--host", bad}), CLI::ParseError) << bad;
  }
  EXPECT_EQ(parse({"--host", std::string(253, 'a')}).options.host.size(), 253U);
}

TEST(Options, InterimPeriod) {
  EXPECT_EQ(parse({}).validated.durations.interim_ns, 0u) << "off unless asked for";
  EXPECT_EQ(parse({"--interim", "60s"}).validated.durations.interim_ns, 60'000'000'000u);
  EXPECT_EQ(parse({"trace", "--interim", "1s"}).validated.durations.interim_ns, 1'000'000'000u);
}

TEST(Options, LeaksSubcommand) {
  Parsed p = parse({"leaks", "--close-wait-timeout", "10s"});
  EXPECT_EQ(p.options.command, Command::kLeaks);
  EXPECT_EQ(p.validated.durations.close_wait_ns, 10'000'000'000u);
}

TEST(Options, BadInputIsAParseError) {
  const std::vector<std::vector<std::string>> bad = {
      {"--no-such-flag"},
      {"--port", "0"},
      {"--port", "65536"},
      {"--lport", "http"},
      {"--addr", "10.0.0.0/33"},
      {"--addr", "not-an-ip"},
      {"-4", "-6"},
      {"--duration", "soon"},
      {"--interim", "0"},
      {"--interim", "-5s"},
      {"--interim", "often"},
      {"--interim", "50ms"},
      {"--close-wait-timeout", "-5s"},
      {"-p", "0"},
      {"-p", "4000000"},
      {"--time-wait-warn", "0"},
      {"--ring-buffer-mib", "3"},
      {"bogus-subcommand"},
      // Each slipped through once.
      {"--time-wait-warn", "nan"},
      {"--time-wait-warn", "inf"},
      {"--time-wait-warn", "-inf"},
      {"--time-wait-warn", "1e1"},
      {"--time-wait-warn", "0x20"},
      {"--time-wait-warn", " 50"},
      {"--time-wait-warn", "+50"},
      {"-d", ""},
      {"-d", "nan"},
      {"-d", "inf"},
      {"-d", "infs"},
      {"--close-wait-timeout", ""},
      {"--close-wait-timeout", "nanms"},
      {"--port", "0x1356"},
      {"--port", "+80"},
      {"--port", " 80"},
      {"--port", "80 "},
      {"--port", "0o17"},
      {"--port", "010"},
      {"--port", "0b101"},
      {"--lport", "0x50"},
      {"--rport", "+443"},
      {"-p", "0x1"},
      {"-p", "+1"},
      {"--ring-buffer-mib", "0x2"},
      {"--max-connections", "0x10"},
      {"--max-connections", "1e3"},
      {"-o", ""},
      {"-o", "-d"},
      {"--output-mode", "0644x"},
      {"--output-mode", "0400"},
      {"--output-mode", "0700"},
      {"--output-mode", "4600"},
      {"--output-mode", "600 "},
      {"--comm", "0123456789abcdef"},
      {"--comm", ""},
      {"--comm", "-d", "1s"},
      {"--addr", "10.0.0.1/24"},
      {"--addr", "-d"},
      {"--cgroup", ""},
      {"--cgroup", "/sys/fs/cgroup/no-such-directory"},
      {"--cgroup", "/tmp"},
      {"--container", ""},
      {"--container", "4f1d3b9a0c2"},
      {"--container", "4F1D3B9A0C2E"},
      {"--container", "docker-4f1d3b9a0c2e"},
      {"--container", "4f1d3b9a0c2e "},
      {"--unit", ""},
      {"--unit", "nginx"},
      {"--unit", "-d"},
      {"--unit", "user.slice"},
      {"--unit", "bad name.service"},
  };
  for (const auto& args : bad) {
    EXPECT_THROW(parse(args), CLI::ParseError)
        << args[0] << " '" << (args.size() > 1 ? args[1] : "") << "'";
  }
}

TEST(Options, AcceptsWhatTheStrictRulesLeave) {
  Parsed p = parse({"--time-wait-warn", "12.5", "--comm", "012345678901234", "--port", "8080",
                    "--addr", "10.0.0.0/24", "--output-mode", "0640", "-o", "out.txt"});
  EXPECT_EQ(p.options.time_wait_warn, 12.5);
  EXPECT_EQ(p.options.comms, std::vector<std::string>{"012345678901234"});
  EXPECT_EQ(p.validated.filter.ports, std::vector<std::uint16_t>{8080});
  ASSERT_EQ(p.validated.filter.addrs.size(), 1u);
  EXPECT_EQ(p.validated.filter.addrs[0].prefix, 24);
  EXPECT_EQ(p.validated.output_mode, 0640u);
  EXPECT_EQ(parse({}).validated.output_mode, 0600u);
}

// Where cgroup v2 is mounted here (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
std::string cgroup2_mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string device;
  std::string dir;
  std::string type;
  std::string rest;
  while (mounts >> device >> dir >> type && std::getline(mounts, rest)) {
    if (type == "cgroup2") {
      return dir;
    }
  }
  return {};
}

TEST(Options, ContainerAndUnitGoToTheFilter) {
  const std::string full(64, 'c');
  Parsed p = parse({"--container", "4f1d3b9a0c2e", "--container", full, "--unit",
                    "php8.2-fpm.service", "--unit", "session-3.scope"});
  EXPECT_EQ(p.validated.filter.containers, (std::vector<std::string>{"4f1d3b9a0c2e", full}));
  EXPECT_EQ(p.validated.filter.units,
            (std::vector<std::string>{"php8.2-fpm.service", "session-3.scope"}));
}

TEST(Options, CgroupResolvedOnceToItsId) {
  const std::string mount = cgroup2_mount();
  if (mount.empty()) {
    GTEST_SKIP() << "no cgroup v2 mount";
  }
  Parsed p = parse({"--cgroup", mount});
  struct stat st {};
  ASSERT_EQ(stat(mount.c_str(), &st), 0);
  EXPECT_EQ(p.validated.filter.cgroups, std::vector<std::uint64_t>{st.st_ino});
}

}  // namespace
}  // namespace tcptrail
