#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>

#include "cli/options.hpp"
#include "cli/trace_command.hpp"
#include "tcptrail/error.hpp"

// NOLINTNEXTLINE(bugprone-exception-escape): outside the try blocks, only a CLI11 setup bug throws
int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  tcptrail::Options options;
  CLI::App app;
  tcptrail::register_options(app, options);
  tcptrail::Validated validated;
  try {
    app.parse(argc, argv);
    validated = tcptrail::validate_options(options);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    std::cerr << "tcptrail: " << e.what() << " (see --help)\n";
    return 2;
  }

  std::string command_line;
  for (int i = 1; i < argc; ++i) {
    command_line += (i > 1 ? " " : "");
    command_line += argv[i];
  }
  try {
    return tcptrail::run_trace(options, validated, command_line);
  } catch (const tcptrail::UsageError& e) {
    std::cerr << "tcptrail: " << e.what() << "\n";
    return 2;
  } catch (const tcptrail::TraceError& e) {
    std::cerr << "tcptrail: " << e.what();
    if (!e.hint().empty()) {
      std::cerr << " (" << e.hint() << ")";
    }
    std::cerr << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "tcptrail: " << e.what() << "\n";
    return 1;
  }
}
