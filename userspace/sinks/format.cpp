#include "sinks/format.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace tcptrail {
namespace {

char* write_octet(std::uint8_t value, char* out) {
  if (value >= 100) {
    *out++ = static_cast<char>('0' + value / 100);
    *out++ = static_cast<char>('0' + value / 10 % 10);
  } else if (value >= 10) {
    *out++ = static_cast<char>('0' + value / 10);
  }
  *out++ = static_cast<char>('0' + value % 10);
  return out;
}

constexpr char kPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

void write_pair(unsigned value, char* out) {
  std::memcpy(out, kPairs + std::size_t{2} * value, 2);
}

std::string fixed(std::uint64_t value, int decimals, std::string_view unit) {
  char text[48];
  if (decimals == 0) {
    std::snprintf(text, sizeof(text), "%llu%.*s", static_cast<unsigned long long>(value),
                  static_cast<int>(unit.size()), unit.data());
  } else {
    const std::uint64_t scale = decimals == 1 ? 10 : 100;
    std::snprintf(text, sizeof(text), "%llu.%0*llu%.*s",
                  static_cast<unsigned long long>(value / scale), decimals,
                  static_cast<unsigned long long>(value % scale), static_cast<int>(unit.size()),
                  unit.data());
  }
  return text;
}

}  // namespace

std::size_t format_address(const IpAddress& address, char* out) {
  if (address.family != 6) {
    // glibc's inet_ntop formats IPv4 through sprintf, several times slower than this.
    char* p = out;
    for (std::size_t i = 0; i < 4; ++i) {
      if (i != 0) {
        *p++ = '.';
      }
      p = write_octet(address.bytes[i], p);
    }
    return static_cast<std::size_t>(p - out);
  }
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, address.bytes.data(), text, sizeof(text)) == nullptr) {
    return 0;
  }
  const std::size_t length = std::min(std::strlen(text), kAddressTextMax);
  std::copy_n(text, length, out);
  return length;
}

void Rfc3339Formatter::write(std::int64_t unix_ns, char* out) {
  constexpr std::int64_t kNsPerSecond = 1'000'000'000;
  constexpr std::int64_t kSecondsPerDay = 86'400;
  // 0000-01-01 and 9999-12-31T23:59:59 in unix seconds.
  constexpr std::int64_t kMinSeconds = -62'167'219'200;
  constexpr std::int64_t kMaxSeconds = 253'402'300'799;
  std::int64_t seconds = unix_ns / kNsPerSecond;
  std::int64_t nanos = unix_ns % kNsPerSecond;
  if (nanos < 0) {
    nanos += kNsPerSecond;
    --seconds;
  }
  seconds = std::clamp(seconds, kMinSeconds, kMaxSeconds);
  std::int64_t days = seconds / kSecondsPerDay;
  std::int64_t second_of_day = seconds % kSecondsPerDay;
  if (second_of_day < 0) {
    second_of_day += kSecondsPerDay;
    --days;
  }
  if (days != day_) {
    // Civil date from days since the epoch, proleptic Gregorian (Howard Hinnant's
    // civil_from_days), avoiding gmtime_r and its time zone lock.
    const std::int64_t shifted = days + 719'468;
    const std::int64_t era = (shifted >= 0 ? shifted : shifted - 146'096) / 146'097;
    const std::int64_t day_of_era = shifted - era * 146'097;
    const std::int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
    const std::int64_t day_of_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const std::int64_t month_index = (5 * day_of_year + 2) / 153;
    const std::int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
    const std::int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
    const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
    write_pair(static_cast<unsigned>(year / 100), date_);
    write_pair(static_cast<unsigned>(year % 100), date_ + 2);
    date_[4] = '-';
    write_pair(static_cast<unsigned>(month), date_ + 5);
    date_[7] = '-';
    write_pair(static_cast<unsigned>(day), date_ + 8);
    day_ = days;
  }
  std::memcpy(out, date_, sizeof(date_));
  const auto time = static_cast<unsigned>(second_of_day);
  const auto fraction = static_cast<std::uint32_t>(nanos);
  out[10] = 'T';
  write_pair(time / 3600, out + 11);
  out[13] = ':';
  write_pair(time / 60 % 60, out + 14);
  out[16] = ':';
  write_pair(time % 60, out + 17);
  out[19] = '.';
  out[20] = static_cast<char>('0' + fraction / 100'000'000);
  write_pair(fraction / 1'000'000 % 100, out + 21);
  write_pair(fraction / 10'000 % 100, out + 23);
  write_pair(fraction / 100 % 100, out + 25);
  write_pair(fraction % 100, out + 27);
  out[29] = 'Z';
}

std::string printable(std::string_view bytes, std::size_t max_columns) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string text;
  for (const char byte : bytes) {
    const auto c = static_cast<unsigned char>(byte);
    char piece[4];
    std::size_t length = 0;
    if (c == '\\') {
      piece[0] = '\\';
      piece[1] = '\\';
      length = 2;
    } else if (c >= 0x20 && c < 0x7f) {
      piece[0] = byte;
      length = 1;
    } else {
      piece[0] = '\\';
      piece[1] = 'x';
      piece[2] = kHex[c >> 4];
      piece[3] = kHex[c & 0xf];
      length = 4;
    }
    if (text.size() + length > max_columns) {
      break;
    }
    text.append(piece, length);
  }
  return text;
}

std::string human_duration(std::uint64_t ns) {
  // Each unit is chosen after rounding, so 9.999ms is 10.0ms, not 10.00ms.
  auto rounded = [ns](std::uint64_t unit) { return ns / unit + (ns % unit >= unit / 2 ? 1 : 0); };
  if (const auto us = rounded(1'000); us < 1'000) {
    return fixed(us, 0, "us");
  }
  if (const auto v = rounded(10'000); v < 1'000) {
    return fixed(v, 2, "ms");
  }
  if (const auto v = rounded(100'000); v < 1'000) {
    return fixed(v, 1, "ms");
  }
  if (const auto ms = rounded(1'000'000); ms < 1'000) {
    return fixed(ms, 0, "ms");
  }
  if (const auto v = rounded(10'000'000); v < 1'000) {
    return fixed(v, 2, "s");
  }
  if (const auto v = rounded(100'000'000); v < 600) {
    return fixed(v, 1, "s");
  }
  char text[48];
  if (const auto s = rounded(1'000'000'000); s < 3'600) {
    std::snprintf(text, sizeof(text), "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
    return text;
  }
  const auto minutes = rounded(60'000'000'000);
  std::snprintf(text, sizeof(text), "%lluh%02llum", static_cast<unsigned long long>(minutes / 60),
                static_cast<unsigned long long>(minutes % 60));
  return text;
}

std::string percentiles_text(const std::optional<Percentiles>& percentiles) {
  if (!percentiles) {
    return "-";
  }
  return human_duration(percentiles->p50_us * 1000) + "/" +
         human_duration(percentiles->p90_us * 1000) + "/" +
         human_duration(percentiles->p99_us * 1000);
}

std::string human_bytes(std::uint64_t bytes) {
  if (bytes < 1024) {
    return fixed(bytes, 0, "B");
  }
  constexpr std::array<std::string_view, 5> kUnits = {"K", "M", "G", "T", "P"};
  std::uint64_t scale = 1024;
  for (std::size_t i = 0; i < kUnits.size(); ++i, scale *= 1024) {
    // Split so that bytes * 10 cannot overflow.
    const auto tenths = bytes / scale * 10 + (bytes % scale * 10 + scale / 2) / scale;
    if (tenths < 100) {
      return fixed(tenths, 1, kUnits[i]);
    }
    const auto whole = bytes / scale + (bytes % scale >= scale / 2 ? 1 : 0);
    if (whole < 1024 || i + 1 == kUnits.size()) {
      return fixed(whole, 0, kUnits[i]);
    }
  }
  return fixed(bytes, 0, "B");
}

// A comm is at most 15 bytes, 60 columns when every byte is escaped.
constexpr std::size_t kLabelCommColumns = 60;

std::string process_label(const ProcessRow& row) {
  if (row.pid == 0) {
    return "no owner";
  }
  return std::to_string(row.pid) + " " + printable(row.comm, kLabelCommColumns);
}

std::string peer_label(const PeerRow& row) {
  char text[kAddressTextMax];
  std::string out(text, format_address(row.addr, text));
  if (!row.port) {
    return out;
  }
  if (row.addr.family == 6) {
    out = "[" + out + "]";
  }
  return out + ":" + std::to_string(*row.port);
}

}  // namespace tcptrail
