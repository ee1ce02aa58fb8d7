// How a connection ended: a pure function of what the table learned of it.
#pragma once

#include "tcptrail/connection.hpp"

namespace tcptrail {

// How a connection ended, from its path, resets and error (see README.md, "Close kinds").
CloseKind decide_close(const Connection& conn);

// Whether a connection ended without ever connecting: it went from SYN_SENT to CLOSE, whatever
// the cause (its close kind says which), including connects the application canceled.
bool failed_connect(const Connection& conn);

}  // namespace tcptrail
