#include "sinks/tee_sink.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "record_fixtures.hpp"
#include "sinks/json_sink.hpp"
#include "sinks/leak_records_only.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

// Notes which kinds of record (the variant's index) and flushes reach it, in order.
class KindLog : public RecordSink {
public:
  explicit KindLog(std::vector<std::string>& log, std::string name)
      : log_(log), name_(std::move(name)) {}
  void write(const Record& record) override {
    log_.push_back(name_ + ":" + std::to_string(record.index()));
  }
  void flush() override { log_.push_back(name_ + ":flush"); }

private:
  std::vector<std::string>& log_;
  std::string name_;
};

Connection connection() {
  Connection conn;
  conn.conn_id = 7;
  conn.laddr = ipv4(127, 0, 0, 1);
  conn.raddr = ipv4(127, 0, 0, 1);
  conn.lport = 40000;
  conn.rport = 8080;
  conn.role = Role::kClient;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 1010 * kMs;
  set_path(conn, {TcpState::kSynSent, TcpState::kEstablished, TcpState::kClose});
  return conn;
}

TEST(TeeSinkTest, EveryRecordAndFlushReachesEachSinkInOrder) {
  std::vector<std::string> log;
  KindLog first(log, "a");
  KindLog second(log, "b");
  TeeSink tee({&first, &second});
  const Connection conn = connection();
  const StartInfo start{"0.1.0", "6.1.0", "", 0, {}};
  tee.write(StartRecord{start});
  tee.write(ConnectionRecord{conn, conn.end_ns});
  tee.flush();
  EXPECT_EQ(log, (std::vector<std::string>{"a:0", "b:0", "a:1", "b:1", "a:flush", "b:flush"}));
}

TEST(TeeSinkTest, EachSinkWritesWhatItWouldAlone) {
  const Connection conn = connection();
  const Leak leak{LeakKind::kCloseWait, 1100 * kMs, 61'000 * kMs, 60'000 * kMs, false, {},
                  std::nullopt};
  auto feed = [&](RecordSink& sink) {
    const StartInfo start{"0.1.0", "6.1.0", "--json", 0, {}};
    sink.write(StartRecord{start});
    sink.write(ConnectionRecord{conn, conn.end_ns});
    sink.write(LeakRecord{conn, leak});
    sink.flush();
  };
  std::ostringstream alone;
  {
    JsonSink sink(alone, kClock, "web-1");
    feed(sink);
  }
  std::ostringstream both;
  std::ostringstream leaks_only;
  {
    JsonSink all(both, kClock, "web-1");
    JsonSink leaks(leaks_only, kClock, "web-1");
    LeakRecordsOnly filter(leaks);
    TeeSink tee({&all, &filter});
    feed(tee);
  }
  EXPECT_EQ(both.str(), alone.str());
  const std::string text = alone.str();
  const std::string last_line = text.substr(text.rfind('\n', text.size() - 2) + 1);
  EXPECT_EQ(leaks_only.str(), last_line);
  EXPECT_NE(last_line.find("\"type\":\"leak\""), std::string::npos);
}

}  // namespace
}  // namespace tcptrail
