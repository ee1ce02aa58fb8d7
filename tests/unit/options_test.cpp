#include "cli/options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace tcptrail {
namespace {

struct Parsed {
  Options options;
  Durations durations;
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
  p.durations = validate_options(p.options);
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
  EXPECT_EQ(p.durations.run_ns, 0u);
  EXPECT_EQ(p.durations.close_wait_ns, 30'000'000'000u);
}

TEST(Options, TraceSubcommandTakesTheSameOptions) {
  Parsed p = parse({"trace", "--json", "--transitions", "-d", "500ms", "--port", "80", "--addr",
                    "10.0.0.0/8", "-6", "-p", std::to_string(getpid())});
  EXPECT_EQ(p.options.command, Command::kTrace);
  EXPECT_TRUE(p.options.json);
  EXPECT_TRUE(p.options.transitions);
  EXPECT_EQ(p.durations.run_ns, 500'000'000u);
  Filter f = make_filter(p.options);
  EXPECT_EQ(f.family, 6);
  EXPECT_EQ(f.ports, std::vector<std::uint16_t>{80});
  EXPECT_EQ(f.pids, std::vector<std::uint32_t>{static_cast<std::uint32_t>(getpid())});
}

TEST(Options, LeaksSubcommand) {
  Parsed p = parse({"leaks", "--close-wait-timeout", "10s"});
  EXPECT_EQ(p.options.command, Command::kLeaks);
  EXPECT_EQ(p.durations.close_wait_ns, 10'000'000'000u);
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
      {"--close-wait-timeout", "-5s"},
      {"-p", "0"},
      {"-p", "4000000"},
      {"--time-wait-warn", "0"},
      {"--ring-buffer-mib", "3"},
      {"bogus-subcommand"},
  };
  for (const auto& args : bad) {
    EXPECT_THROW(parse(args), CLI::ParseError)
        << args[0] << " " << (args.size() > 1 ? args[1] : "");
  }
}

}  // namespace
}  // namespace tcptrail
