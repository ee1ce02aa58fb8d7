// The one exception type for setup failures (open, load, attach, ring buffer, netlink). The
// per-event path never throws.
#pragma once

#include <stdexcept>
#include <string>

namespace tcptrail {

class TraceError : public std::runtime_error {
public:
  TraceError(const std::string& what, int err, std::string hint = {})
      : std::runtime_error(what), errno_(err), hint_(std::move(hint)) {}
  [[nodiscard]] int error_number() const { return errno_; }
  [[nodiscard]] const std::string& hint() const { return hint_; }

private:
  int errno_;
  std::string hint_;
};

// A value that is well formed but cannot be used on this host (a --metrics address in use or
// not local): bad usage, exit status 2 like a value the parser refuses.
class UsageError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

}  // namespace tcptrail
