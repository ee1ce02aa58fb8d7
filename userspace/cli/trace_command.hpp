#pragma once

#include <string>

#include "cli/options.hpp"

namespace tcptrail {

// Runs `tcptrail trace` (and `leaks`) until interrupted or the duration ends; returns the exit
// status. Setup failures throw TraceError.
int run_trace(const Options& options, const Validated& validated, const std::string& command_line);

}  // namespace tcptrail
