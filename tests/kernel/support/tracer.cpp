#include "support/tracer.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tt {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string tcptrail_binary() {
  const char* env = std::getenv("TCPTRAIL_BINARY");
  return env != nullptr && *env != '\0' ? env : TCPTRAIL_BINARY;
}

std::string peer_binary() {
  const char* env = std::getenv("TCPTRAIL_PEER");
  return env != nullptr && *env != '\0' ? env : TCPTRAIL_PEER;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/tcptrail-kt-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + " failed");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

Tracer::Tracer(std::vector<std::string> args, Clock::duration start_timeout)
    : output_(dir_.file("trace.ndjson")), process_([&] {
        std::vector<std::string> argv = {tcptrail_binary(), "trace", "--json", "--output", output_};
        argv.insert(argv.end(), args.begin(), args.end());
        return SpawnOptions{argv, {}, false, {}};
      }()) {
  const auto deadline = Clock::now() + start_timeout;
  for (;;) {
    const auto& recs = records();
    if (!recs.empty()) {
      if (recs.front().value("type", "") != "start") {
        throw std::runtime_error("first record is not start: " + recs.front().dump());
      }
      return;
    }
    if (!process_.running()) {
      throw std::runtime_error("tcptrail exited before its start record (" +
                               process_.wait(0s)->describe() + "): " + process_.err());
    }
    if (Clock::now() >= deadline) {
      throw std::runtime_error("no start record from tcptrail within the timeout; stderr: " +
                               process_.err());
    }
    std::this_thread::sleep_for(10ms);
  }
}

Tracer::~Tracer() {
  if (::testing::Test::HasFailure() && !dumped_) {
    const std::string text = read_file(output_);
    std::cerr << "---- tcptrail " << process_.command_line() << "\n---- stderr:\n"
              << process_.err() << "---- output (" << text.size() << " bytes):\n"
              << text.substr(0, 20000) << (text.size() > 20000 ? "\n[...]\n" : "") << "---- end\n";
  }
}

const std::vector<Json>& Tracer::records() {
  const std::string text = read_file(output_);
  while (consumed_ < text.size()) {
    const std::size_t end = text.find('\n', consumed_);
    if (end == std::string::npos) {
      break;  // a line still being written
    }
    const std::string line = text.substr(consumed_, end - consumed_);
    consumed_ = end + 1;
    Json parsed = Json::parse(line, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      ADD_FAILURE() << "tcptrail wrote a line that is not a JSON object: " << line;
      continue;
    }
    records_.push_back(std::move(parsed));
  }
  return records_;
}

std::vector<Json> Tracer::wait_for(const Predicate& match, const std::string& what,
                                   std::size_t count, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::vector<Json> found = select(records(), match);
    if (found.size() >= count) {
      return found;
    }
    if (Clock::now() >= deadline || !process_.running()) {
      throw std::runtime_error("waiting for " + std::to_string(count) + " x " + what + ": got " +
                               std::to_string(found.size()) +
                               (process_.running() ? " before the timeout" : ", tracer exited") +
                               "\nrecords:\n" + dump_lines(records_) + "stderr: " + process_.err());
    }
    std::this_thread::sleep_for(20ms);
  }
}

bool Tracer::settle(const Predicate& match, std::size_t count, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  while (select(records(), match).size() < count) {
    if (Clock::now() >= deadline || !process_.running()) {
      return false;
    }
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

Tracer::Stopped Tracer::stop(int signo) {
  process_.send_signal(signo);
  return finish(process_.wait(10s));
}

Tracer::Stopped Tracer::wait_exit(Clock::duration timeout) {
  return finish(process_.wait(timeout));
}

Tracer::Stopped Tracer::finish(const std::optional<ExitStatus>& status) {
  if (!status) {
    throw std::runtime_error("tcptrail did not exit within the timeout");
  }
  Stopped result{*status, records(), process_.err()};
  const std::string text = read_file(output_);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "output does not end with a newline";
  if (!result.records.empty()) {
    EXPECT_EQ(result.records.front().value("type", ""), "start");
    EXPECT_EQ(result.records.back().value("type", ""), "stop")
        << "last record: " << result.records.back().dump();
  } else {
    ADD_FAILURE() << "tcptrail wrote nothing";
  }
  return result;
}

std::vector<Json> select(const std::vector<Json>& records, const Predicate& match) {
  std::vector<Json> out;
  for (const Json& r : records) {
    if (match(r)) {
      out.push_back(r);
    }
  }
  return out;
}

Predicate of_type(const std::string& type) {
  return [type](const Json& r) { return r.value("type", "") == type; };
}

double ms_of(const Json& ts) {
  const std::string text = ts.get<std::string>();
  std::tm tm{};
  strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return static_cast<double>(timegm(&tm)) * 1e3 + std::stod(text.substr(19, 10)) * 1e3;
}

Predicate socket_record(const std::string& type, int lport, int rport) {
  return [=](const Json& r) {
    return r.value("type", "") == type && r.value("lport", -1) == lport &&
           r.value("rport", -1) == rport;
  };
}

Json only(const std::vector<Json>& records, const Predicate& match, const std::string& what) {
  const std::vector<Json> found = select(records, match);
  if (found.size() != 1) {
    throw std::runtime_error("expected exactly one " + what + ", found " +
                             std::to_string(found.size()) + ":\n" + dump_lines(found) +
                             "all records:\n" + dump_lines(records));
  }
  return found.front();
}

bool is_rfc3339_utc_ns(const Json& value) {
  static const std::regex pattern(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$)");
  return value.is_string() && std::regex_match(value.get<std::string>(), pattern);
}

std::string dump_lines(const std::vector<Json>& records, std::size_t max) {
  std::string text;
  const std::size_t first = records.size() > max ? records.size() - max : 0;
  if (first > 0) {
    text += "[" + std::to_string(first) + " earlier records]\n";
  }
  for (std::size_t i = first; i < records.size(); ++i) {
    text += records[i].dump() + "\n";
  }
  return text;
}

}  // namespace tt
