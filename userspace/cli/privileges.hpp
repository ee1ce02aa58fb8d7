// What tcptrail does with its capabilities beyond the ones loading needs (CAP_BPF and
// CAP_PERFMON, or CAP_SYS_ADMIN): which features a missing one costs, and giving up the rest
// once the programs are attached.
#pragma once

#include <string>
#include <vector>

namespace tcptrail {

// The features a missing capability costs ("netns", "owners"), each said in one warning line
// on stderr; the names go to the start record.
std::vector<std::string> report_degraded();

// Once the programs are attached, the rings mapped and the socket table read: keeps only the
// capabilities the sweeps use (CAP_SYS_ADMIN to enter other network namespaces, CAP_SYS_PTRACE
// and CAP_DAC_READ_SEARCH to read other processes' /proc entries) and sets no-new-privs. Throws
// TraceError.
void drop_privileges();

}  // namespace tcptrail
