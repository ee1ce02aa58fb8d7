// The command line: arguments (split at NUL bytes) through register_options and
// validate_options. Parsing either succeeds with every port, PID and duration in range, or
// throws one of CLI11's errors; nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/options.hpp"
#include "fuzz_check.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tcptrail;  // NOLINT(google-build-using-namespace)
  std::vector<std::string> args;
  std::string current;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(data[i]));
    }
  }
  args.push_back(current);
  std::vector<char*> argv{const_cast<char*>("tcptrail")};
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  CLI::App app;
  Options options;
  register_options(app, options);
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
    const Validated validated = validate_options(options);
    const Durations& durations = validated.durations;
    fuzz_check(durations.close_wait_ns >= 1 && durations.fin_wait2_ns >= 1 &&
               durations.syn_recv_ns >= 1);
    for (const auto& ports : {options.lports, options.rports, options.ports}) {
      for (const std::uint16_t port : ports) {
        fuzz_check(port >= 1);
      }
    }
    for (const std::uint32_t pid : options.pids) {
      fuzz_check(pid >= 1 && pid <= 4194304);
    }
    fuzz_check(validated.filter.addrs.size() == options.addrs.size());
    fuzz_check(validated.output_mode >= 0600 && validated.output_mode <= 0666);
  } catch (const CLI::Error&) {
    // Bad usage, reported by main as exit 2.
  }
  return 0;
}
