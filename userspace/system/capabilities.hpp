// The process's capabilities, read and narrowed with capget/capset (no libcap).
#pragma once

#include <initializer_list>

namespace tcptrail::sys {

// Whether cap (CAP_BPF, ...) is in the effective set.
bool has_capability(int cap);

// Keeps only those of `keep` the process has, in the effective and permitted sets, clears the
// inheritable and ambient sets, drops every other capability from the bounding set (when it has
// CAP_SETPCAP) and sets no-new-privs, so nothing the process runs or becomes can regain them.
// Throws std::system_error.
void keep_only_capabilities(std::initializer_list<int> keep);

}  // namespace tcptrail::sys
