#include "sinks/json_writer.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

namespace tcptrail {
namespace {

// Bytes that cannot be copied through as they are: ASCII that JSON or a terminal needs
// escaped, and every non-ASCII byte, which is validated as UTF-8.
constexpr std::array<bool, 256> kSpecial = [] {
  std::array<bool, 256> table{};
  for (std::size_t c = 0; c < table.size(); ++c) {
    table[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x7f;
  }
  return table;
}();

// Whether any of the 8 bytes is special, tested all at once (bit tricks from "Bit Twiddling
// Hacks": hasless and haszero). It may report a byte that is not special, never miss one.
bool needs_escape(std::uint64_t chunk) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t control = (chunk - kOnes * 0x20) & ~chunk & kHigh;
  const std::uint64_t quote = has_zero(chunk ^ (kOnes * '"'));
  const std::uint64_t backslash = has_zero(chunk ^ (kOnes * '\\'));
  // A carry out of a 0xff byte only adds false positives: that byte is special anyway.
  const std::uint64_t high = (chunk | (chunk + kOnes)) & kHigh;
  return (control | quote | backslash | high) != 0;
}

// Length of the valid UTF-8 sequence at p, or 0 when it is not one. In that case `bad` is set
// to the length of its maximal invalid subpart, which is replaced by a single U+FFFD as the
// Unicode standard recommends (section 3.9, "U+FFFD Substitution of Maximal Subparts").
std::size_t utf8_sequence(const unsigned char* p, const unsigned char* end, std::size_t& bad) {
  const unsigned char lead = p[0];
  std::size_t trail = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    trail = 1;
  } else if (lead == 0xe0) {
    trail = 2;
    low = 0xa0;  // overlong below
  } else if ((lead >= 0xe1 && lead <= 0xec) || lead == 0xee || lead == 0xef) {
    trail = 2;
  } else if (lead == 0xed) {
    trail = 2;
    high = 0x9f;  // surrogates above
  } else if (lead == 0xf0) {
    trail = 3;
    low = 0x90;  // overlong below
  } else if (lead >= 0xf1 && lead <= 0xf3) {
    trail = 3;
  } else if (lead == 0xf4) {
    trail = 3;
    high = 0x8f;  // beyond U+10FFFF above
  } else {
    bad = 1;
    return 0;
  }
  for (std::size_t i = 1; i <= trail; ++i) {
    if (p + i >= end || p[i] < low || p[i] > high) {
      bad = i;
      return 0;
    }
    low = 0x80;
    high = 0xbf;
  }
  return trail + 1;
}

char* write_u00(unsigned char c, char* out) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out[0] = '\\';
  out[1] = 'u';
  out[2] = '0';
  out[3] = '0';
  out[4] = kHex[c >> 4];
  out[5] = kHex[c & 0xf];
  return out + 6;
}

char* write_literal(std::string_view text, char* out) {
  std::memcpy(out, text.data(), text.size());
  return out + text.size();
}

}  // namespace

JsonWriter& JsonWriter::dynamic_key(std::string_view name) {
  char* out = start_value(escaped_max(name.size()) + 3);
  *out++ = '"';
  out = escape(name, out);
  *out++ = '"';
  *out++ = ':';
  commit(out);
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view text) {
  char* out = start_value(escaped_max(text.size()) + 2);
  *out++ = '"';
  out = escape(text, out);
  *out++ = '"';
  commit(out);
  return *this;
}

JsonWriter& JsonWriter::address(const IpAddress& address) {
  char* out = start_value(kAddressTextMax + 2);
  *out++ = '"';
  out += format_address(address, out);
  *out++ = '"';
  commit(out);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  char* out = start_value(5);
  commit(write_literal(value ? "true" : "false", out));
  return *this;
}

JsonWriter& JsonWriter::null() {
  commit(write_literal("null", start_value(4)));
  return *this;
}

JsonWriter& JsonWriter::number(double value) {
  if (!std::isfinite(value)) {
    return null();
  }
  char* out = start_value(kNumberMax);
  commit(std::to_chars(out, out + kNumberMax, value).ptr);
  return *this;
}

JsonWriter& JsonWriter::milliseconds(std::uint64_t ns) {
  char* out = start_value(kNumberMax);
  const std::uint64_t us = ns / 1000 + (ns % 1000 >= 500 ? 1 : 0);
  out = std::to_chars(out, out + kNumberMax - 4, us / 1000).ptr;
  const auto fraction = static_cast<unsigned>(us % 1000);
  out[0] = '.';
  out[1] = static_cast<char>('0' + fraction / 100);
  out[2] = static_cast<char>('0' + fraction / 10 % 10);
  out[3] = static_cast<char>('0' + fraction % 10);
  commit(out + 4);
  return *this;
}

JsonWriter& JsonWriter::id(std::uint64_t value) {
  char* out = start_value(kNumberMax);
  *out++ = '"';
  out = std::to_chars(out, out + kNumberMax - 2, value).ptr;
  *out++ = '"';
  commit(out);
  return *this;
}

JsonWriter& JsonWriter::timestamp(std::int64_t unix_ns) {
  char* out = start_value(kRfc3339Length + 2);
  *out++ = '"';
  rfc3339_.write(unix_ns, out);
  out += kRfc3339Length;
  *out++ = '"';
  commit(out);
  return *this;
}

void JsonWriter::end_line() {
  char* out = room(1);
  *out++ = '\n';
  commit(out);
  need_comma_ = false;
}

void JsonWriter::reserve(std::size_t bytes) {
  if (bytes > buffer_.size()) {
    buffer_.resize(bytes);
  }
}

void JsonWriter::grow(std::size_t bytes) {
  buffer_.resize(std::max({size_ + bytes, 2 * buffer_.size(), std::size_t{256}}));
}

char* JsonWriter::escape(std::string_view text, char* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    if (end - p >= 8) {
      std::uint64_t chunk = 0;
      std::memcpy(&chunk, p, sizeof(chunk));
      if (!needs_escape(chunk)) {
        std::memcpy(out, p, sizeof(chunk));
        out += sizeof(chunk);
        p += sizeof(chunk);
        continue;
      }
    }
    const unsigned char c = *p;
    if (!kSpecial[c]) {
      *out++ = static_cast<char>(c);
      ++p;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          out = write_literal("\\\"", out);
          break;
        case '\\':
          out = write_literal("\\\\", out);
          break;
        case '\n':
          out = write_literal("\\n", out);
          break;
        case '\r':
          out = write_literal("\\r", out);
          break;
        case '\t':
          out = write_literal("\\t", out);
          break;
        default:
          out = write_u00(c, out);
          break;
      }
      ++p;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t length = utf8_sequence(p, end, bad);
    if (length == 0) {
      out = write_literal("\xef\xbf\xbd", out);  // U+FFFD
      p += bad;
    } else if (c == 0xc2 && p[1] < 0xa0) {
      // C1 controls (U+0080..U+009F) are valid but some terminals act on them (0x9b is CSI).
      out = write_u00(p[1], out);
      p += length;
    } else {
      std::memcpy(out, p, length);
      out += length;
      p += length;
    }
  }
  return out;
}

}  // namespace tcptrail
