#include "tcptrail/close_kind.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <initializer_list>

namespace tcptrail {
namespace {

using S = TcpState;

// A connection as the table hands it to decide_close: its path, the state it left for CLOSE,
// its port and what it saw.
Connection ended(std::initializer_list<TcpState> path, std::uint16_t lport = 45678,
                 std::uint16_t error = 0) {
  Connection conn;
  for (TcpState s : path) {
    conn.path.push(s);
  }
  conn.closed_from = *(path.end() - 2);
  conn.state = S::kClose;
  conn.lport = lport;
  conn.error = error;
  return conn;
}

TEST(CloseKind, FailedConnectsAreNamedByCause) {
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 45678, ECONNREFUSED)),
            CloseKind::kRefused);
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 45678, ETIMEDOUT)), CloseKind::kTimeout);
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 45678, EHOSTUNREACH)),
            CloseKind::kHostUnreachable);
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 45678, ENETUNREACH)),
            CloseKind::kNetUnreachable);
  Connection reset = ended({S::kSynSent, S::kClose});
  reset.reset_received = true;
  EXPECT_EQ(decide_close(reset), CloseKind::kRefused);
}

TEST(CloseKind, NoLocalPortIsNoPortAndAnApplicationsCloseIsCanceled) {
  // inet_hash_connect found no port: back to CLOSE with port 0 and no socket error.
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 0)), CloseKind::kNoPort);
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kClose}, 45678)), CloseKind::kCanceled);
  // A server child that never finished its handshake keeps the old name.
  EXPECT_EQ(decide_close(ended({S::kSynRecv, S::kClose}, 80)), CloseKind::kAborted);
}

TEST(CloseKind, UnreachableAfterTheHandshakeIsStillNamedByTheError) {
  // tcp_write_err reports the soft ICMP error instead of ETIMEDOUT when there was one.
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kEstablished, S::kClose}, 45678, EHOSTUNREACH)),
            CloseKind::kHostUnreachable);
  EXPECT_EQ(decide_close(ended({S::kSynSent, S::kEstablished, S::kClose}, 45678, ETIMEDOUT)),
            CloseKind::kTimeout);
}

TEST(CloseKind, OnlyConnectsThatLeftSynSentFailed) {
  EXPECT_TRUE(failed_connect(ended({S::kSynSent, S::kClose}, 0)));
  EXPECT_TRUE(failed_connect(ended({S::kSynSent, S::kClose}, 45678, ECONNREFUSED)));
  EXPECT_FALSE(failed_connect(ended({S::kSynSent, S::kEstablished, S::kClose}, 45678, ETIMEDOUT)));
  EXPECT_FALSE(failed_connect(ended({S::kSynRecv, S::kClose}, 80)));
  EXPECT_FALSE(failed_connect(Connection{}));  // live: never closed
}

}  // namespace
}  // namespace tcptrail
