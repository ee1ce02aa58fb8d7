#include "sinks/json_writer.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace tcptrail {
namespace {

// Independent of the writer's decoder: a strict RFC 3629 check.
bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      length = 2;
      code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3;
      code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) {
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      const auto t = static_cast<unsigned char>(text[i + k]);
      if ((t & 0xc0) != 0x80) {
        return false;
      }
      code = code << 6 | (t & 0x3f);
    }
    const std::uint32_t minimum = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string write_string(std::string_view text) {
  JsonWriter writer;
  writer.string(text);
  return std::string(writer.text());
}

std::string parsed_string(std::string_view text) {
  return nlohmann::json::parse(write_string(text)).get<std::string>();
}

const std::string kFffd = "\xef\xbf\xbd";

TEST(JsonWriter, PlacesCommasInNestedContainers) {
  JsonWriter writer;
  writer.begin_object();
  writer.key("a").number(1);
  writer.key("b").begin_array().number(1).number(2);
  writer.begin_object().key("c").null().end_object();
  writer.end_array();
  writer.key("d").boolean(true);
  writer.key("e").begin_object().end_object();
  writer.key("f").begin_array().end_array();
  writer.end_object();
  writer.end_line();
  writer.begin_object().key("g").boolean(false).end_object();
  EXPECT_EQ(writer.text(),
            "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":true,\"e\":{},\"f\":[]}\n{\"g\":false}");
}

TEST(JsonWriter, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(write_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(write_string("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(write_string(std::string("\x00\x01\x1b\x1f", 4)), R"("\u0000\u0001\u001b\u001f")");
  EXPECT_EQ(write_string("\x7f"), R"("\u007f")");
  EXPECT_EQ(write_string("\x08\x0c"), R"("\u0008\u000c")");
}

TEST(JsonWriter, EscapesC1ControlsButKeepsOtherUnicode) {
  EXPECT_EQ(write_string("\xc2\x85\xc2\x9b"), R"("\u0085\u009b")");
  EXPECT_EQ(parsed_string("\xc2\x9b"), "\xc2\x9b");
  const std::string text = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e \xc2\xa0";
  EXPECT_EQ(write_string(text), "\"" + text + "\"");
}

TEST(JsonWriter, ReplacesInvalidUtf8WithReplacementCharacter) {
  EXPECT_EQ(parsed_string("\xff\xfe"), kFffd + kFffd);
  EXPECT_EQ(parsed_string("\xe2\x82"), kFffd);  // truncated: one maximal subpart
  EXPECT_EQ(parsed_string("a\xe2\x82z"), "a" + kFffd + "z");
  EXPECT_EQ(parsed_string("\xc0\xaf"), kFffd + kFffd);                          // overlong '/'
  EXPECT_EQ(parsed_string("\xe0\x80\xaf"), kFffd + kFffd + kFffd);              // overlong, 3 bytes
  EXPECT_EQ(parsed_string("\xed\xa0\x80"), kFffd + kFffd + kFffd);              // surrogate U+D800
  EXPECT_EQ(parsed_string("\xf4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(parsed_string("\xf0\x9f\x98"), kFffd);
  EXPECT_EQ(parsed_string("\x80x"), kFffd + "x");
  EXPECT_EQ(parsed_string("\xf8\x88\x80\x80\x80"), kFffd + kFffd + kFffd + kFffd + kFffd);
}

TEST(JsonWriter, RandomBytesAlwaysGiveValidJsonAndUtf8) {
  std::mt19937 random(42);
  std::uniform_int_distribution<int> length(0, 24);
  std::uniform_int_distribution<int> byte(0, 255);
  // Bias towards the interesting bytes so sequences are often almost valid.
  constexpr unsigned char kInteresting[] = {0x00, 0x1b, 0x22, 0x5c, 0x7f, 0x80, 0xbf, 0xc0, 0xc2,
                                            0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(kInteresting) - 1);
  for (int round = 0; round < 20000; ++round) {
    std::string input;
    const int n = length(random);
    for (int i = 0; i < n; ++i) {
      input.push_back(
          static_cast<char>(byte(random) < 128 ? kInteresting[pick(random)] : byte(random)));
    }
    const std::string text = write_string(input);
    ASSERT_TRUE(valid_utf8(text)) << testing::PrintToString(input);
    for (const char c : text) {
      ASSERT_GE(static_cast<unsigned char>(c), 0x20) << testing::PrintToString(input);
      ASSERT_NE(static_cast<unsigned char>(c), 0x7f) << testing::PrintToString(input);
    }
    const auto parsed = nlohmann::json::parse(text);
    ASSERT_TRUE(parsed.is_string());
    if (valid_utf8(input)) {
      EXPECT_EQ(parsed.get<std::string>(), input);
    }
  }
}

TEST(JsonWriter, EscapesKeys) {
  JsonWriter writer;
  writer.begin_object().dynamic_key("a\"b\n").number(1).end_object();
  EXPECT_EQ(nlohmann::json::parse(writer.text()).at("a\"b\n"), 1);
}

TEST(JsonWriter, WritesIntegersOfEveryWidth) {
  JsonWriter writer;
  writer.begin_array()
      .number(std::uint8_t{255})
      .number(std::int16_t{-32768})
      .number(std::uint32_t{4294967295u})
      .number(std::int64_t{std::numeric_limits<std::int64_t>::min()})
      .number(std::numeric_limits<std::uint64_t>::max())
      .end_array();
  EXPECT_EQ(writer.text(), "[255,-32768,4294967295,-9223372036854775808,18446744073709551615]");
}

TEST(JsonWriter, WritesDoublesAndNullForNonFinite) {
  JsonWriter writer;
  writer.begin_array()
      .number(0.25)
      .number(0.1)
      .number(std::numeric_limits<double>::quiet_NaN())
      .number(std::numeric_limits<double>::infinity())
      .end_array();
  EXPECT_EQ(writer.text(), "[0.25,0.1,null,null]");
}

TEST(JsonWriter, WritesMillisecondsWithMicrosecondPrecision) {
  auto ms = [](std::uint64_t ns) {
    JsonWriter writer;
    writer.milliseconds(ns);
    return std::string(writer.text());
  };
  EXPECT_EQ(ms(0), "0.000");
  EXPECT_EQ(ms(499), "0.000");
  EXPECT_EQ(ms(500), "0.001");
  EXPECT_EQ(ms(12'345'678), "12.346");
  EXPECT_EQ(ms(1'000'000), "1.000");
  EXPECT_EQ(ms(3'600'000'000'000), "3600000.000");
  EXPECT_EQ(ms(std::numeric_limits<std::uint64_t>::max()), "18446744073709.552");
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(ms(12'345'678)).get<double>(), 12.346);
}

TEST(JsonWriter, WritesIdsAsStringsThatRoundTrip) {
  const std::uint64_t big = (std::uint64_t{1} << 53) + 1;
  JsonWriter writer;
  writer.begin_array().id(big).id(std::numeric_limits<std::uint64_t>::max()).id(0).end_array();
  const auto parsed = nlohmann::json::parse(writer.text());
  ASSERT_TRUE(parsed[0].is_string());
  EXPECT_EQ(std::stoull(parsed[0].get<std::string>()), big);
  EXPECT_EQ(parsed[1], "18446744073709551615");
  EXPECT_EQ(parsed[2], "0");
}

TEST(JsonWriter, WritesRfc3339Timestamps) {
  auto ts = [](std::int64_t unix_ns) {
    JsonWriter writer;
    writer.timestamp(unix_ns);
    return std::string(writer.text());
  };
  EXPECT_EQ(ts(0), "\"1970-01-01T00:00:00.000000000Z\"");
  EXPECT_EQ(ts(1'795'313'269'123'456'789), "\"2026-11-22T02:07:49.123456789Z\"");
  EXPECT_EQ(ts(-1), "\"1969-12-31T23:59:59.999999999Z\"");
  EXPECT_EQ(ts(1'709'164'800'000'000'000), "\"2024-02-29T00:00:00.000000000Z\"");
}

TEST(JsonWriter, TimestampsAgreeWithGmtime) {
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::int64_t> seconds(-2'000'000'000, 4'000'000'000);
  for (int i = 0; i < 10000; ++i) {
    const std::int64_t s = seconds(random);
    const auto t = static_cast<time_t>(s);
    tm parts{};
    gmtime_r(&t, &parts);
    char expected[64];
    std::snprintf(expected, sizeof(expected), "\"%04d-%02d-%02dT%02d:%02d:%02d.000000042Z\"",
                  parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                  parts.tm_min, parts.tm_sec);
    JsonWriter writer;
    writer.timestamp(s * 1'000'000'000 + 42);
    ASSERT_EQ(writer.text(), expected) << s;
  }
}

TEST(JsonWriter, ClearKeepsCapacity) {
  JsonWriter writer;
  for (int i = 0; i < 1000; ++i) {
    writer.begin_object().key("k").string("some value").end_object();
    writer.end_line();
  }
  const std::size_t capacity = writer.capacity();
  writer.clear();
  EXPECT_EQ(writer.size(), 0u);
  EXPECT_EQ(writer.capacity(), capacity);
  writer.begin_object().end_object();
  EXPECT_EQ(writer.text(), "{}");
}

}  // namespace
}  // namespace tcptrail
