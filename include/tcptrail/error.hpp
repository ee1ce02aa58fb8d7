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
  int error_number() const { return errno_; }
  const std::string& hint() const { return hint_; }

private:
  int errno_;
  std::string hint_;
};

}  // namespace tcptrail
