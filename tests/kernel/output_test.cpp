// Output files and signals as an operator meets them: a planted symlink, an existing file, the
// umask, a run that fails, a full disk, log rotation, a stalled reader.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// Each line parsed; a line that is not a complete JSON object fails the test.
std::vector<Json> parse_lines(const std::string& text) {
  std::vector<Json> records;
  for (const std::string& line : split_lines(text)) {
    Json parsed = Json::parse(line, nullptr, false);
    EXPECT_TRUE(!parsed.is_discarded() && parsed.is_object()) << "incomplete line: " << line;
    records.push_back(std::move(parsed));
  }
  EXPECT_TRUE(text.empty() || text.back() == '\n') << "last line cut";
  return records;
}

// `count` short connections from one client process; returns its pid.
pid_t connections(int count) {
  Server server = start_server("127.0.0.1", {"--count", std::to_string(count)});
  Process client = spawn_peer({"client", "--addr", "127.0.0.1", "--port",
                               std::to_string(server.port), "--count", std::to_string(count)});
  expect_clean_exit(client);
  expect_clean_exit(server.process);
  return client.pid();
}

TEST(OutputTest, SymlinkIsNotFollowed) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  spit(dir.file("precious"), "root's data\n");
  ASSERT_EQ(::symlink(dir.file("precious").c_str(), dir.file("out").c_str()), 0);
  const RunResult r = run({tcptrail_binary(), "--json", "-o", dir.file("out"), "-d", "300ms"});
  EXPECT_EQ(r.status.exit_code, 1) << r.status.describe();
  EXPECT_EQ(split_lines(without_kernel_gaps(r.err)).size(), 1U) << r.err;
  EXPECT_NE(r.err.find("symbolic link"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir.file("precious")), "root's data\n");
}

TEST(OutputTest, ExistingFileTruncatedAndEveryFileMode0600WhateverTheUmask) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  spit(dir.file("old"), std::string(10000, 'x') + "\n");
  ASSERT_EQ(::chmod(dir.file("old").c_str(), 0644), 0);
  const mode_t saved = ::umask(022);
  const RunResult existing =
      run({tcptrail_binary(), "--json", "-o", dir.file("old"), "-d", "300ms"});
  const RunResult fresh = run({tcptrail_binary(), "--json", "-o", dir.file("new"), "-d", "300ms"});
  const RunResult wider = run({tcptrail_binary(), "--json", "-o", dir.file("wide"), "--output-mode",
                               "0640", "-d", "300ms"});
  ::umask(saved);
  for (const RunResult* r : {&existing, &fresh, &wider}) {
    EXPECT_EQ(r->status.exit_code, 0) << r->err;
  }
  EXPECT_EQ(mode_of(dir.file("old")), 0600U);
  EXPECT_EQ(mode_of(dir.file("new")), 0600U);
  EXPECT_EQ(mode_of(dir.file("wide")), 0640U);
  const std::vector<Json> records = parse_lines(slurp(dir.file("old")));
  ASSERT_GE(records.size(), 2U);
  EXPECT_EQ(records.front()["type"], "start");
  EXPECT_EQ(records.back()["type"], "stop");
}

TEST(OutputTest, FileOfAnotherUserOrHardLinkedIsRefused) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  spit(dir.file("theirs"), "x\n");
  ASSERT_EQ(::chown(dir.file("theirs").c_str(), 65534, 65534), 0);
  spit(dir.file("linked"), "y\n");
  ASSERT_EQ(::link(dir.file("linked").c_str(), dir.file("second-name").c_str()), 0);
  for (const char* name : {"theirs", "second-name"}) {
    const RunResult r = run({tcptrail_binary(), "-o", dir.file(name), "-d", "300ms"});
    EXPECT_EQ(r.status.exit_code, 1) << name << ": " << r.err;
    EXPECT_EQ(split_lines(without_kernel_gaps(r.err)).size(), 1U) << r.err;
  }
  EXPECT_EQ(slurp(dir.file("theirs")), "x\n");
  EXPECT_EQ(slurp(dir.file("linked")), "y\n");
}

TEST(OutputTest, FailedRunLeavesAnExistingFileUntouched) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  spit(dir.file("trace"), "yesterday's trace\n");
  ASSERT_EQ(::chmod(dir.file("trace").c_str(), 0644), 0);
  // Root without a single capability: the programs cannot be loaded.
  const RunResult r = run({"setpriv", "--bounding-set=-all", "--inh-caps=-all", tcptrail_binary(),
                           "-o", dir.file("trace"), "-d", "1s"});
  EXPECT_EQ(r.status.exit_code, 1) << r.err;
  EXPECT_EQ(split_lines(without_kernel_gaps(r.err)).size(), 1U) << r.err;
  EXPECT_EQ(slurp(dir.file("trace")), "yesterday's trace\n");
  EXPECT_EQ(mode_of(dir.file("trace")), 0644U);
}

TEST(OutputTest, DevFullIsAFailureWithOneLine) {
  TT_REQUIRE_KERNEL();
  const RunResult file = run({tcptrail_binary(), "--json", "-o", "/dev/full", "-d", "5s"});
  EXPECT_EQ(file.status.exit_code, 1) << file.status.describe();
  EXPECT_EQ(without_kernel_gaps(file.err),
            "tcptrail: cannot write /dev/full: No space left on device\n");

  Process to_stdout(SpawnOptions{{tcptrail_binary(), "-d", "5s"}, {}, false, "/dev/full"});
  const auto status = to_stdout.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 1) << status->describe();
  EXPECT_EQ(without_kernel_gaps(to_stdout.err()),
            "tcptrail: cannot write stdout: No space left on device\n");
}

TEST(OutputTest, FullFilesystemIsAFailureWithOneLine) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  ASSERT_EQ(::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=64k"), 0) << errno;
  const std::string out = dir.file("trace.ndjson");
  Process tracer(SpawnOptions{
      {tcptrail_binary(), "--json", "--transitions", "-o", out, "-d", "30s"}, {}, false, {}});
  std::optional<ExitStatus> status;
  for (int round = 0; round < 40 && !(status = tracer.wait(0s)); ++round) {
    connections(50);
  }
  if (!status) {
    status = tracer.wait(5s);
  }
  const std::string err = tracer.err();
  const std::string text = slurp(out);
  ::umount2(dir.path().c_str(), MNT_DETACH);
  ASSERT_TRUE(status) << "tracer still runs with a full filesystem";
  EXPECT_EQ(status->exit_code, 1) << status->describe();
  EXPECT_EQ(without_kernel_gaps(err),
            "tcptrail: cannot write " + out + ": No space left on device\n");
  // What was written is whole records, the first of them start.
  const std::vector<Json> records = parse_lines(text);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.front()["type"], "start");
}

// Waits until the file at path holds a line containing `text`.
void wait_for_text(const std::string& path, const std::string& text, Process& tracer) {
  const auto deadline = Clock::now() + 10s;
  while (slurp(path).find(text) == std::string::npos) {
    if (Clock::now() >= deadline || !tracer.running()) {
      throw std::runtime_error("no " + text + " in " + path + ": " + tracer.err());
    }
    std::this_thread::sleep_for(20ms);
  }
}

TEST(OutputTest, SighupAfterRenameSplitsRecordsWithoutLossOrDuplicates) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  const std::string out = dir.file("trace.ndjson");
  const std::string rotated = out + ".1";
  Process tracer(
      SpawnOptions{{tcptrail_binary(), "--json", "--transitions", "-o", out}, {}, false, {}});
  wait_for_text(out, R"("type":"start")", tracer);
  const pid_t first = connections(20);
  ASSERT_EQ(::rename(out.c_str(), rotated.c_str()), 0);
  tracer.send_signal(SIGHUP);
  const auto deadline = Clock::now() + 5s;
  while (::access(out.c_str(), F_OK) != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(mode_of(out), 0600U);
  const pid_t second = connections(20);
  wait_for_text(out, "\"pid\":" + std::to_string(second), tracer);
  tracer.send_signal(SIGINT);
  const auto status = tracer.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 0) << status->describe() << tracer.err();

  const std::vector<Json> before = parse_lines(slurp(rotated));
  const std::vector<Json> after = parse_lines(slurp(out));
  ASSERT_FALSE(before.empty());
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(before.front()["type"], "start");
  EXPECT_EQ(after.back()["type"], "stop");
  std::multiset<std::string> ids;
  std::size_t of_first = 0;
  std::size_t of_second = 0;
  for (const auto* records : {&before, &after}) {
    for (const Json& r : *records) {
      if (r["type"] == "connection" && (r["pid"] == first || r["pid"] == second)) {
        ids.insert(r["conn_id"].get<std::string>());
        (r["pid"] == first ? of_first : of_second) += 1;
      }
    }
  }
  EXPECT_EQ(of_first, 20U);
  EXPECT_EQ(of_second, 20U);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "duplicates";
}

TEST(OutputTest, SighupOnStdoutIsIgnored) {
  TT_REQUIRE_KERNEL();
  Process tracer(SpawnOptions{{tcptrail_binary(), "--json"}, {}, false, {}});
  tracer.wait_json([](const Json& r) { return r.value("type", "") == "start"; }, 10s, "start");
  tracer.send_signal(SIGHUP);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(tracer.running());
  tracer.send_signal(SIGINT);
  const auto status = tracer.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 0) << status->describe();
  EXPECT_EQ(tracer.json_lines().back()["type"], "stop");
}

TEST(OutputTest, StalledReaderDoesNotHoldUpSigterm) {
  TT_REQUIRE_KERNEL();
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);  // never reads
  ASSERT_GE(reader, 0);
  Process tracer(SpawnOptions{{tcptrail_binary(), "--json", "--transitions"}, {}, false, fifo});
  // The start record says the tracer is attached (a fixed sleep was too short under qemu TCG);
  // reading just that line leaves the stall to the connections that follow.
  std::string start;
  const auto deadline = Clock::now() + 30s;
  while (start.find('\n') == std::string::npos && Clock::now() < deadline && tracer.running()) {
    char byte = 0;
    if (::read(reader, &byte, 1) == 1) {
      start += byte;
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_NE(start.find("\"type\":\"start\""), std::string::npos) << start << tracer.err();
  for (int round = 0; round < 4; ++round) {
    connections(100);  // far more than the 64 KiB a pipe holds
  }
  ASSERT_TRUE(tracer.running()) << tracer.err();
  const auto signalled = Clock::now();
  tracer.send_signal(SIGTERM);
  const auto status = tracer.wait(10s);
  const auto took = Clock::now() - signalled;
  ::close(reader);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exit_code, 0) << status->describe() << tracer.err();
  EXPECT_LT(took, 1500ms);
  EXPECT_NE(tracer.err().find("lines not written"), std::string::npos) << tracer.err();
}

}  // namespace
}  // namespace tt
