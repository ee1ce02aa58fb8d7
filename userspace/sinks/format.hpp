// Allocation-free formatting shared by the sinks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "tcptrail/event.hpp"
#include "tcptrail/records.hpp"

namespace tcptrail {

// Longest text format_address writes (an IPv6 address with an embedded IPv4, no NUL).
inline constexpr std::size_t kAddressTextMax = 45;

// Writes the address as inet_ntop does (IPv6 in RFC 5952 form) to out, which must hold
// kAddressTextMax bytes; returns the length. No NUL is written.
std::size_t format_address(const IpAddress& address, char* out);

// Length of an RFC 3339 UTC time with nanoseconds: 2026-11-22T02:07:49.123456789Z.
inline constexpr std::size_t kRfc3339Length = 30;

// Writes nanoseconds since the unix epoch as RFC 3339 UTC, to kRfc3339Length bytes at out (no
// NUL). Remembers the last date, since consecutive records nearly always share it. Years
// outside 0000..9999 are clamped.
class Rfc3339Formatter {
public:
  void write(std::int64_t unix_ns, char* out);

private:
  std::int64_t day_ = std::numeric_limits<std::int64_t>::min();
  char date_[10] = {};  // YYYY-MM-DD of day_
};

// The one gate for text from outside (process names, keys built from them) on its way to a
// terminal: printable ASCII as is, a backslash doubled, every other byte as \xNN. Nothing else
// passes, so C0 controls (\n, \r, ESC and with it CSI and OSC sequences), DEL, C1 controls
// (U+0080-U+009F), bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
// U+061C), zero-width and line-separator characters and invalid UTF-8 all show as escapes, and
// one byte is one column, so tables stay aligned. Cut to at most max_columns, at a whole escape.
// Every text view and summary uses it; JSON has its own escaping (JsonWriter).
std::string printable(std::string_view bytes,
                      std::size_t max_columns = std::numeric_limits<std::size_t>::max());

// At most three significant digits and a unit: 850us 1.23ms 12.3ms 123ms 3.40s 34.5s 2m05s
// 1h02m.
std::string human_duration(std::uint64_t ns);
// p50/p90/p99 in human_duration's units, "-" when there are none.
std::string percentiles_text(const std::optional<Percentiles>& percentiles);

// Bytes in powers of 1024 with at most three significant digits: 512B 1.5K 150K 3.2M 12G.
std::string human_bytes(std::uint64_t bytes);

// Summary row labels for text views, already through printable(): "1234 curl" or "no owner";
// "93.184.216.34:443", "[2001:db8::1]:443" or a client host's bare address.
std::string process_label(const ProcessRow& row);
std::string peer_label(const PeerRow& row);

}  // namespace tcptrail
