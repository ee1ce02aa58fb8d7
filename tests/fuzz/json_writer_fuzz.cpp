// JsonWriter driven by the input as a program of writer calls: every line it writes must parse
// (nlohmann_json), and every string, key, number and id must read back as written.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "sinks/json_writer.hpp"

namespace {

// Whether text is valid UTF-8 (the writer copies such text through, escaped or not).
bool valid_utf8(std::string_view text) {
  try {
    (void)nlohmann::json(std::string(text)).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

class Input {
public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool empty() const { return size_ == 0; }
  std::uint8_t byte() { return size_ == 0 ? 0 : (--size_, *data_++); }
  template <typename T> T value() {
    T v{};
    const std::size_t n = std::min(sizeof(T), size_);
    std::memcpy(&v, data_, n);
    data_ += n;
    size_ -= n;
    return v;
  }
  std::string_view text() {
    const std::size_t n = std::min<std::size_t>(byte(), size_);
    std::string_view s(reinterpret_cast<const char*>(data_), n);
    data_ += n;
    size_ -= n;
    return s;
  }

private:
  const std::uint8_t* data_;
  std::size_t size_;
};

// Every token of one line in document order, keys as strings, through the SAX interface so that
// repeated keys are kept. A written value that cannot be compared exactly is a one-element
// array naming how to compare it (a parsed token is never an array).
class Tokens : public nlohmann::json_sax<nlohmann::json> {
public:
  std::vector<nlohmann::json> tokens;

  bool null() override { return add(nullptr); }
  bool boolean(bool val) override { return add(val); }
  bool number_integer(number_integer_t val) override { return add(val); }
  bool number_unsigned(number_unsigned_t val) override { return add(val); }
  bool number_float(number_float_t val, const string_t& /*text*/) override { return add(val); }
  bool string(string_t& val) override { return add(val); }
  bool binary(binary_t& /*val*/) override { return false; }
  bool start_object(std::size_t /*elements*/) override { return add("{"); }
  bool key(string_t& val) override { return add(val); }
  bool end_object() override { return add("}"); }
  bool start_array(std::size_t /*elements*/) override { return add("["); }
  bool end_array() override { return add("]"); }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) override {
    return false;
  }

private:
  bool add(nlohmann::json value) {
    tokens.push_back(std::move(value));
    return true;
  }
};

nlohmann::json text_token(std::string_view text) {
  return valid_utf8(text) ? nlohmann::json(std::string(text)) : nlohmann::json::array({"utf8"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tcptrail::JsonWriter writer;
  Input in(data, size);
  while (!in.empty()) {
    std::vector<nlohmann::json> expected;
    // One line: a top-level object, containers nested at most 8 deep, closed at the end.
    std::vector<bool> in_object{true};
    writer.begin_object();
    expected.emplace_back("{");
    for (int ops = 0; !in.empty() && ops < 64; ++ops) {
      const std::uint8_t op = in.byte();
      if (op % 16 == 15) {
        break;
      }
      if (op % 16 == 14) {
        if (in_object.size() > 1) {
          expected.emplace_back(in_object.back() ? "}" : "]");
          in_object.back() ? writer.end_object() : writer.end_array();
          in_object.pop_back();
        }
        continue;
      }
      if (in_object.back()) {
        if (op & 0x80) {
          writer.key("k");
          expected.emplace_back("k");
        } else {
          const std::string_view name = in.text();
          writer.dynamic_key(name);
          expected.push_back(text_token(name));
        }
      }
      switch (op % 16) {
        case 0: {
          const std::string_view text = in.text();
          writer.string(text);
          expected.push_back(text_token(text));
          break;
        }
        case 1: {
          const auto v = in.value<std::int64_t>();
          writer.number(v);
          expected.emplace_back(v);
          break;
        }
        case 2: {
          const auto v = in.value<std::uint64_t>();
          writer.number(v);
          expected.emplace_back(v);
          break;
        }
        case 3: {
          const auto v = in.value<double>();
          writer.number(v);
          expected.push_back(std::isfinite(v) ? nlohmann::json::array({v})
                                              : nlohmann::json(nullptr));
          break;
        }
        case 4: {
          const auto v = in.value<std::uint64_t>();
          writer.id(v);
          expected.emplace_back(std::to_string(v));
          break;
        }
        case 5: {
          const auto ns = in.value<std::uint64_t>();
          writer.milliseconds(ns);
          const std::uint64_t us = ns / 1000 + (ns % 1000 >= 500 ? 1 : 0);
          // Exact as a double only below 2^53 microseconds.
          expected.push_back(us < (std::uint64_t{1} << 53)
                                 ? nlohmann::json::array({static_cast<double>(us) / 1000.0})
                                 : nlohmann::json::array({"number"}));
          break;
        }
        case 6: {
          const bool v = (in.byte() & 1) != 0;
          writer.boolean(v);
          expected.emplace_back(v);
          break;
        }
        case 7:
          writer.null();
          expected.emplace_back(nullptr);
          break;
        case 8:
          writer.timestamp(in.value<std::int64_t>());
          expected.push_back(nlohmann::json::array({"timestamp"}));
          break;
        case 9: {
          tcptrail::IpAddress address;
          address.family = (in.byte() & 1) != 0 ? 6 : 4;
          address.bytes = in.value<std::array<std::uint8_t, 16>>();
          if (address.family == 4) {
            std::fill(address.bytes.begin() + 4, address.bytes.end(), 0);
          }
          writer.address(address);
          expected.emplace_back(address.to_string());
          break;
        }
        default:
          if (in_object.size() < 8) {
            const bool object = (op & 1) != 0;
            object ? writer.begin_object() : writer.begin_array();
            in_object.push_back(object);
            expected.emplace_back(object ? "{" : "[");
          } else {
            writer.null();
            expected.emplace_back(nullptr);
          }
          break;
      }
    }
    while (!in_object.empty()) {
      expected.emplace_back(in_object.back() ? "}" : "]");
      in_object.back() ? writer.end_object() : writer.end_array();
      in_object.pop_back();
    }
    writer.end_line();

    std::string_view text = writer.text();
    fuzz_check(text.size() >= 3 && text.back() == '\n');
    text.remove_suffix(1);
    fuzz_check(text.find('\n') == std::string_view::npos);
    // Throws (and so fails the run) on anything that is not one valid JSON value.
    fuzz_check(nlohmann::json::parse(text).is_object());
    Tokens got;
    fuzz_check(nlohmann::json::sax_parse(text, &got));
    fuzz_check(got.tokens.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const nlohmann::json& want = expected[i];
      const nlohmann::json& token = got.tokens[i];
      if (!want.is_array()) {
        fuzz_check(token == want);
      } else if (want[0] == "utf8") {
        fuzz_check(token.is_string());  // invalid UTF-8 in: U+FFFD out, valid as the parse checked
      } else if (want[0] == "timestamp") {
        fuzz_check(token.is_string() &&
                   token.get<std::string>().size() == tcptrail::kRfc3339Length &&
                   token.get<std::string>().back() == 'Z');
      } else if (want[0] == "number") {
        fuzz_check(token.is_number());
      } else {
        fuzz_check(token.is_number() && token.get<double>() == want[0].get<double>());
      }
    }
    writer.clear();
  }
  return 0;
}
