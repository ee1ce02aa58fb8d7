// Symbolic names of errno values, for records that report a socket error.
#pragma once

#include <string>
#include <string_view>

namespace tcptrail {

// "ECONNREFUSED" for ECONNREFUSED, and so on for every errno this platform defines; an empty
// view for values it does not know. Never allocates; the view refers to static storage.
std::string_view errno_name(int err);

// errno_name, or "E<number>" for values without a name (allocates only then).
std::string errno_label(int err);

}  // namespace tcptrail
