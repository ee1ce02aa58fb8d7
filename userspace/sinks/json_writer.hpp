// An append-only JSON writer for the hot path: values are written in place into one buffer
// that keeps its capacity across clear(), so once it has grown no field allocates.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "sinks/format.hpp"

namespace tcptrail {

template <typename T>
concept JsonInteger = std::integral<T> && !std::same_as<T, bool>;

// An object key known at compile time, checked then to need no escaping, so writing it is a
// plain copy. A key that needs escaping does not compile.
class JsonKey {
public:
  template <std::size_t N>
  consteval JsonKey(const char (&name)[N]) : name_(name, N - 1) {  // NOLINT: implicit on purpose
    for (const char c : name_) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte >= 0x7f || c == '"' || c == '\\') {
        throw "JsonKey: the key needs escaping; use JsonWriter::dynamic_key";
      }
    }
  }
  [[nodiscard]] std::string_view name() const { return name_; }

private:
  std::string_view name_;
};

// Writes JSON text in document order. The caller balances begin/end calls and gives every
// value inside an object a key first; the writer places the commas. Everything it writes is
// valid UTF-8: invalid input bytes become U+FFFD, control characters (including DEL and the
// C1 range) are escaped, so a line is safe to parse and to print on a terminal.
class JsonWriter {
public:
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  // Inline so that the copy of a literal key compiles to a few stores.
  JsonWriter& key(JsonKey literal) { return plain_key(literal.name()); }
  // A key computed at run time, escaped like any string.
  JsonWriter& dynamic_key(std::string_view name);
  JsonWriter& string(std::string_view text);
  // Text that needs no escaping, copied as is: only printable ASCII other than '"' and '\\'.
  // For names from tcptrail's own tables (states, kinds, errno names) and formatted addresses;
  // anything that comes from outside (comm, command line) goes through string().
  JsonWriter& plain_string(std::string_view text) {
    char* out = start_value(text.size() + 2);
    *out++ = '"';
    std::memcpy(out, text.data(), text.size());
    out += text.size();
    *out++ = '"';
    commit(out);
    return *this;
  }
  // An IP address as a string, formatted in place by format_address.
  JsonWriter& address(const IpAddress& address);
  // A key computed at run time under the same condition as plain_string.
  JsonWriter& plain_key(std::string_view name) {
    char* out = start_value(name.size() + 3);
    *out++ = '"';
    std::memcpy(out, name.data(), name.size());
    out += name.size();
    *out++ = '"';
    *out++ = ':';
    commit(out);
    need_comma_ = false;
    return *this;
  }
  JsonWriter& boolean(bool value);
  JsonWriter& null();
  template <JsonInteger T> JsonWriter& number(T value) {
    char* out = start_value(kNumberMax);
    commit(std::to_chars(out, out + kNumberMax, value).ptr);
    return *this;
  }
  // Shortest representation that reads back exactly; null for NaN and infinities, which JSON
  // cannot express.
  JsonWriter& number(double value);
  // Nanoseconds as a millisecond number rounded to the microsecond: 12345678 -> 12.346.
  JsonWriter& milliseconds(std::uint64_t ns);
  // A 64-bit identifier as a decimal string: JSON readers that use doubles lose precision
  // above 2^53.
  JsonWriter& id(std::uint64_t value);
  // Nanoseconds since the unix epoch as an RFC 3339 UTC string with nanoseconds.
  JsonWriter& timestamp(std::int64_t unix_ns);

  // Ends the current top-level value with a newline (NDJSON); the next one starts fresh.
  void end_line();

  [[nodiscard]] std::string_view text() const { return {buffer_.data(), size_}; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t capacity() const { return buffer_.size(); }
  // Drops the text but keeps the capacity.
  void clear() {
    size_ = 0;
    need_comma_ = false;
  }
  void reserve(std::size_t bytes);

private:
  static constexpr std::size_t kNumberMax = 32;

  // Room for at least `bytes` more bytes after the text.
  char* room(std::size_t bytes) {
    if (buffer_.size() - size_ < bytes) {
      grow(bytes);
    }
    return buffer_.data() + size_;
  }
  void grow(std::size_t bytes);
  // Room for a value of at most max_bytes, after the comma it may need.
  char* start_value(std::size_t max_bytes) {
    char* out = room(max_bytes + 1);
    if (need_comma_) {
      *out++ = ',';
    }
    need_comma_ = true;
    return out;
  }
  void commit(const char* end) { size_ = static_cast<std::size_t>(end - buffer_.data()); }
  JsonWriter& open(char bracket) {
    char* out = start_value(1);
    *out++ = bracket;
    commit(out);
    need_comma_ = false;
    return *this;
  }
  JsonWriter& close(char bracket) {
    char* out = room(1);
    *out++ = bracket;
    commit(out);
    need_comma_ = true;
    return *this;
  }
  // Writes text escaped at out, which has room for escaped_max(text.size()) bytes.
  static char* escape(std::string_view text, char* out);
  static std::size_t escaped_max(std::size_t length) { return 6 * length; }

  // Its size is the capacity; the text is its first size_ bytes, written in place.
  std::string buffer_;
  std::size_t size_ = 0;
  // A value was just completed at the current level, so the next one needs a comma. One flag
  // suffices: opening a container clears it and closing one completes a value.
  bool need_comma_ = false;
  Rfc3339Formatter rfc3339_;
};

}  // namespace tcptrail
