#include "analyzers/retransmit_folder.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "event_builder.hpp"

namespace tcptrail {
namespace {

using testing::kMs;
constexpr std::uint64_t kSec = 1000 * kMs;

struct Written {
  std::uint64_t conn_id;
  TcpState state;
  std::uint32_t segs;
  std::uint64_t ts_ns;
  std::uint32_t count;
  std::uint64_t last_ns;
};

class RetransmitFolderTest : public ::testing::Test {
protected:
  static Connection conn(std::uint64_t id) {
    Connection c;
    c.conn_id = id;
    return c;
  }
  std::vector<Written> written;
  RetransmitFolder folder{
      kSec, [this](const RetransmitRecord& r) {
        written.push_back({r.conn.conn_id, r.state, r.segs, r.ts_ns, r.count, r.last_ns()});
      }};
};

TEST_F(RetransmitFolderTest, IdenticalRetransmitsWithinASecondAreOneRecord) {
  for (std::uint64_t i = 0; i < 5; ++i) {
    folder.add(conn(1), TcpState::kEstablished, 1, 10 * kSec + i * 200 * kMs);
  }
  folder.tick(10 * kSec + 999 * kMs);
  EXPECT_TRUE(written.empty()) << "the window is still open";
  folder.tick(11 * kSec);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].count, 5u);
  EXPECT_EQ(written[0].ts_ns, 10 * kSec) << "the first's time";
  EXPECT_EQ(written[0].last_ns, 10 * kSec + 800 * kMs);
  EXPECT_EQ(written[0].segs, 1u);
}

TEST_F(RetransmitFolderTest, ARetransmitAfterTheWindowBeginsAFold) {
  folder.add(conn(1), TcpState::kEstablished, 1, 0);
  folder.add(conn(1), TcpState::kEstablished, 1, 999 * kMs);
  folder.add(conn(1), TcpState::kEstablished, 1, kSec);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].count, 2u);
  folder.flush_all();
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[1].count, 1u);
  EXPECT_EQ(written[1].ts_ns, kSec);
  EXPECT_EQ(written[1].last_ns, kSec) << "one retransmit: its own time";
}

TEST_F(RetransmitFolderTest, OtherStatesSegmentCountsAndConnectionsAreNotFolded) {
  folder.add(conn(1), TcpState::kEstablished, 1, 0);
  folder.add(conn(2), TcpState::kEstablished, 1, 1 * kMs);
  folder.add(conn(1), TcpState::kEstablished, 3, 2 * kMs);  // ends conn 1's first fold
  folder.add(conn(1), TcpState::kFinWait1, 3, 3 * kMs);     // and its second
  folder.flush_all();
  ASSERT_EQ(written.size(), 4u);
  EXPECT_EQ(written[0].conn_id, 1u);
  EXPECT_EQ(written[0].segs, 1u);
  EXPECT_EQ(written[1].segs, 3u);
  EXPECT_EQ(written[1].state, TcpState::kEstablished);
  // What was still held comes in the order it began.
  EXPECT_EQ(written[2].conn_id, 2u);
  EXPECT_EQ(written[3].state, TcpState::kFinWait1);
  for (const Written& w : written) {
    EXPECT_EQ(w.count, 1u);
  }
}

TEST_F(RetransmitFolderTest, AConnectionsFoldIsWrittenBeforeItsOtherRecords) {
  folder.add(conn(1), TcpState::kEstablished, 1, 0);
  folder.add(conn(1), TcpState::kEstablished, 1, 100 * kMs);
  folder.add(conn(2), TcpState::kEstablished, 1, 100 * kMs);
  folder.flush_connection(1);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].conn_id, 1u);
  EXPECT_EQ(written[0].count, 2u);
  folder.flush_connection(1);
  EXPECT_EQ(written.size(), 1u) << "nothing left of it";
}

TEST(RetransmitFolder, WithoutAWindowEachIsWrittenAtOnce) {
  std::vector<std::uint32_t> counts;
  RetransmitFolder folder(0, [&](const RetransmitRecord& r) { counts.push_back(r.count); });
  Connection c;
  c.conn_id = 1;
  folder.add(c, TcpState::kEstablished, 1, 0);
  folder.add(c, TcpState::kEstablished, 1, 1);
  EXPECT_EQ(counts, (std::vector<std::uint32_t>{1, 1}));
}

}  // namespace
}  // namespace tcptrail
