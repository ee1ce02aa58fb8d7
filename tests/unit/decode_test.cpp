#include "tcptrail/decode.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tcptrail/events.h"

namespace tcptrail {
namespace {

template <typename Raw> std::vector<std::byte> bytes_of(const Raw& raw) {
  std::vector<std::byte> out(sizeof(raw));
  std::memcpy(out.data(), &raw, sizeof(raw));
  return out;
}

tcptrail_event sample() {
  tcptrail_event raw{};
  raw.hdr.ts_ns = 123;
  raw.hdr.kind = TCPTRAIL_EV_STATE;
  raw.hdr.family = 4;
  raw.sk.sock_cookie = (std::uint64_t{1} << 60) + 7;
  raw.sk.saddr[0] = 127;
  raw.sk.saddr[3] = 1;
  raw.sk.sport = 8080;
  raw.sk.sk_err = 104;
  raw.sk.flags = TCPTRAIL_F_NS_IN_OLD;
  raw.conn_id = 9;
  raw.ns_in_old = 5000;
  raw.old_state = 1;
  raw.new_state = 4;
  raw.role = TCPTRAIL_ROLE_SERVER;
  raw.conn_flags = TCPTRAIL_C_ESTABLISHED;
  raw.owner_pid = 42;
  raw.owner_source = TCPTRAIL_OWNER_SYSCALL;
  std::memcpy(raw.owner_comm, "0123456789abcdef", 16);  // full 16 bytes, no NUL
  return raw;
}

tcptrail_conn_record sample_connection() {
  tcptrail_conn_record raw{};
  raw.hdr.ts_ns = 900;
  raw.hdr.kind = TCPTRAIL_EV_CONNECTION;
  raw.hdr.family = 6;
  raw.sk.sock_cookie = 77;
  raw.sk.saddr[15] = 1;
  raw.sk.daddr[15] = 2;
  raw.sk.sport = 443;
  raw.sk.dport = 50000;
  raw.sk.bytes_acked = 1000;
  raw.sk.bytes_received = 2000;
  raw.sk.total_retrans = 3;
  raw.sk.srtt_us = 250;
  raw.sk.netns_ino = 4026531840u;
  raw.sk.cgroup_id = 11;
  raw.sk.flags = TCPTRAIL_F_ORPHAN;
  raw.sk.sk_err = 104;
  raw.conn.conn_id = 12;
  raw.conn.first_ns = 100;
  raw.conn.state_since_ns = 800;
  raw.conn.end_ns = 890;
  raw.conn.state_ns[2] = 700;  // ESTABLISHED
  raw.conn.handshake_us = 40;
  raw.conn.syn_retransmits = 1;
  raw.conn.state = 7;
  raw.conn.closed_from = 9;
  raw.conn.role = TCPTRAIL_ROLE_SERVER;
  raw.conn.owner_pid = 5;
  raw.conn.owner_source = TCPTRAIL_OWNER_LISTENER;
  std::memcpy(raw.conn.owner_comm, "nginx", 5);
  raw.conn.flags =
      TCPTRAIL_C_CLOSED | TCPTRAIL_C_ESTABLISHED | TCPTRAIL_C_HANDSHAKE | TCPTRAIL_C_RESET_SENT;
  const std::uint8_t path[] = {3, 1, 8, 9, 7};
  std::memcpy(raw.conn.path, path, sizeof(path));
  raw.conn.path_len = sizeof(path);
  return raw;
}

TEST(Decode, DecodesEveryEventField) {
  DecodeStats stats;
  const auto bytes = bytes_of(sample());
  EXPECT_EQ(record_kind(bytes), TCPTRAIL_EV_STATE);
  auto e = decode_event(bytes, stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts_ns, 123u);
  EXPECT_EQ(e->sock_cookie, (std::uint64_t{1} << 60) + 7);
  EXPECT_EQ(e->kind, EventKind::kState);
  EXPECT_EQ(e->old_state, TcpState::kEstablished);
  EXPECT_EQ(e->new_state, TcpState::kFinWait1);
  EXPECT_EQ(e->laddr.to_string(), "127.0.0.1");
  EXPECT_EQ(e->lport, 8080);
  EXPECT_EQ(e->conn_id, 9u);
  EXPECT_EQ(e->ns_in_old, 5000u);
  EXPECT_TRUE(e->ns_in_old_known);
  EXPECT_EQ(e->role, Role::kServer);
  EXPECT_EQ(e->conn_flags, TCPTRAIL_C_ESTABLISHED);
  EXPECT_EQ(e->owner.pid, 42u);
  EXPECT_EQ(e->owner.source, OwnerSource::kSyscall);
  EXPECT_EQ(e->owner.comm_view(), "0123456789abcdef");
  EXPECT_EQ(e->sk_err, 104);
  EXPECT_EQ(stats.decoded, 1u);
}

TEST(Decode, AResetThatWaitedForItsHolderKeepsItsOwnTime) {
  DecodeStats stats;
  tcptrail_event raw = sample();
  raw.hdr.kind = TCPTRAIL_EV_RESET_RECEIVED;
  raw.hdr.ts_ns = 5000;
  raw.detail = 4000;  // sent when the holder's close() came, 4000 ns after it was received
  auto e = decode_event(bytes_of(raw), stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts_ns, 1000u);
  raw.detail = 6000;  // more than the stamp: not a wait
  e = decode_event(bytes_of(raw), stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts_ns, 5000u);
  raw.hdr.kind = TCPTRAIL_EV_RETRANSMIT;  // detail counts segments there
  raw.detail = 2;
  e = decode_event(bytes_of(raw), stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts_ns, 5000u);
}

TEST(Decode, RejectsWrongSizeKindFamilyRoleAndOwnerSource) {
  DecodeStats stats;
  auto good = bytes_of(sample());
  EXPECT_FALSE(decode_event(std::span(good).first(good.size() - 1), stats));
  std::vector<std::byte> longer = good;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_event(longer, stats));
  tcptrail_event raw = sample();
  raw.hdr.kind = 77;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  raw = sample();
  raw.hdr.family = 5;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  raw = sample();
  raw.role = 3;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  raw = sample();
  raw.owner_source = 200;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  EXPECT_EQ(stats.rejected, 6u);
  EXPECT_EQ(stats.decoded, 0u);
  EXPECT_EQ(record_kind(std::span(good).first(8)), 0) << "too short for a header";
}

TEST(Decode, DecodesEveryConnectionField) {
  DecodeStats stats;
  const auto bytes = bytes_of(sample_connection());
  EXPECT_EQ(record_kind(bytes), TCPTRAIL_EV_CONNECTION);
  auto c = decode_connection(bytes, stats);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->conn_id, 12u);
  EXPECT_EQ(c->sock_cookie, 77u);
  EXPECT_EQ(c->laddr.to_string(), "::1");
  EXPECT_EQ(c->raddr.to_string(), "::2");
  EXPECT_EQ(c->lport, 443);
  EXPECT_EQ(c->rport, 50000);
  EXPECT_EQ(c->tx_bytes, 1000u);
  EXPECT_EQ(c->rx_bytes, 2000u);
  EXPECT_EQ(c->retransmits, 3u);
  EXPECT_EQ(c->syn_retransmits, 1u);
  EXPECT_EQ(c->srtt_us, 250u);
  EXPECT_EQ(c->netns_ino, 4026531840u);
  EXPECT_EQ(c->cgroup_id, 11u);
  EXPECT_TRUE(c->orphan);
  EXPECT_EQ(c->error, 104) << "the socket's error when the lifecycle had none";
  EXPECT_EQ(c->first_ns, 100u);
  EXPECT_EQ(c->end_ns, 890u);
  EXPECT_EQ(c->state_ns[2], 700u);
  EXPECT_EQ(c->handshake_us, 40u);
  EXPECT_TRUE(c->has_handshake);
  EXPECT_TRUE(c->established);
  EXPECT_TRUE(c->reset_sent);
  EXPECT_FALSE(c->reset_received);
  EXPECT_FALSE(c->preexisting);
  EXPECT_EQ(c->role, Role::kServer);
  EXPECT_EQ(c->closed_from, TcpState::kLastAck);
  EXPECT_EQ(c->owner.source, OwnerSource::kListener);
  EXPECT_EQ(c->owner.comm_view(), "nginx");
  ASSERT_EQ(c->path.size, 5);
  EXPECT_EQ(c->path.states[0], TcpState::kSynRecv);
  EXPECT_EQ(c->path.states[4], TcpState::kClose);
  EXPECT_FALSE(c->path.truncated);
}

TEST(Decode, BytesAreTheApplicationsWithoutSynAndFins) {
  DecodeStats stats;
  tcptrail_conn_record raw = sample_connection();
  // A server child: its counters start past the SYN-ACK; our FIN acked, the peer's received.
  raw.sk.flags = TCPTRAIL_F_FIN_ACKED | TCPTRAIL_F_FIN_RECEIVED;
  auto c = decode_connection(bytes_of(raw), stats);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tx_bytes, 999u);
  EXPECT_EQ(c->rx_bytes, 1999u);
  // An established client: its SYN was acked too. Nothing is taken that was not counted.
  raw.conn.role = TCPTRAIL_ROLE_CLIENT;
  raw.sk.flags = TCPTRAIL_F_FIN_ACKED;
  c = decode_connection(bytes_of(raw), stats);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tx_bytes, 998u);
  EXPECT_EQ(c->rx_bytes, 2000u);
  // A client whose connect() failed: no SYN was acked.
  raw.conn.flags &= ~TCPTRAIL_C_ESTABLISHED;
  raw.sk.bytes_acked = 0;
  raw.sk.flags = 0;
  c = decode_connection(bytes_of(raw), stats);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tx_bytes, 0u);
}

// close() with SO_LINGER {1,0} (or with unread data) shuts the sending side down and, with all
// data acked, leaves snd_una at write_seq: the kernel side flags a FIN as acked, but the socket
// went from ESTABLISHED or CLOSE_WAIT straight to CLOSE and sent an RST, no FIN.
TEST(Decode, AbortiveCloseSentNoFinToTakeOut) {
  DecodeStats stats;
  tcptrail_conn_record raw = sample_connection();
  raw.conn.role = TCPTRAIL_ROLE_CLIENT;  // sent 100 bytes; its SYN and the 100 were acked
  raw.sk.bytes_acked = 101;
  raw.sk.bytes_received = 200;
  raw.sk.flags = TCPTRAIL_F_FIN_ACKED;
  for (const std::uint8_t from : {1 /* ESTABLISHED */, 8 /* CLOSE_WAIT */}) {
    raw.conn.closed_from = from;
    raw.sk.flags |= from == 8 ? TCPTRAIL_F_FIN_RECEIVED : 0;
    raw.sk.bytes_received = from == 8 ? 201 : 200;
    auto c = decode_connection(bytes_of(raw), stats);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->tx_bytes, 100u) << "closed from state " << int{from};
    EXPECT_EQ(c->rx_bytes, 200u) << "closed from state " << int{from};
  }
  // Aborted from FIN_WAIT2, its FIN had been sent and acked: that one is taken out.
  raw.conn.closed_from = 5;
  raw.sk.bytes_acked = 102;
  raw.sk.flags = TCPTRAIL_F_FIN_ACKED;
  raw.sk.bytes_received = 200;
  auto c = decode_connection(bytes_of(raw), stats);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tx_bytes, 100u);
}

TEST(Decode, RejectsMalformedConnections) {
  DecodeStats stats;
  tcptrail_conn_record raw = sample_connection();
  raw.conn.path_len = TCPTRAIL_PATH_MAX + 1;
  EXPECT_FALSE(decode_connection(bytes_of(raw), stats));
  raw = sample_connection();
  raw.conn.flags &= ~TCPTRAIL_C_CLOSED;
  EXPECT_FALSE(decode_connection(bytes_of(raw), stats)) << "only closed connections travel";
  raw = sample_connection();
  raw.conn.conn_id = 0;
  EXPECT_FALSE(decode_connection(bytes_of(raw), stats));
  raw = sample_connection();
  raw.hdr.family = 0;
  EXPECT_FALSE(decode_connection(bytes_of(raw), stats));
  EXPECT_FALSE(decode_connection(bytes_of(sample()), stats)) << "an event is not a connection";
  EXPECT_EQ(stats.rejected, 5u);
  raw = sample_connection();
  raw.conn.path_len = TCPTRAIL_PATH_MAX | TCPTRAIL_PATH_TRUNCATED;
  auto c = decode_connection(bytes_of(raw), stats);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->path.truncated);
  EXPECT_EQ(c->path.size, TCPTRAIL_PATH_MAX);
}

tcptrail_conn_batch sample_batch(std::uint32_t count) {
  tcptrail_conn_batch batch{};
  batch.hdr.ts_ns = 5000;
  batch.hdr.kind = TCPTRAIL_EV_CONNECTION_BATCH;
  batch.count = count;
  for (std::uint32_t i = 0; i < TCPTRAIL_BATCH_MAX; ++i) {
    batch.records[i] = sample_connection();
    batch.records[i].conn.conn_id = 100 + i;
  }
  return batch;
}

TEST(Decode, BatchCarriesItsCountOfConnectionRecords) {
  DecodeStats stats;
  const auto bytes = bytes_of(sample_batch(3));
  EXPECT_EQ(record_kind(bytes), TCPTRAIL_EV_CONNECTION_BATCH);
  const std::span<const std::byte> records = batched_connections(bytes, stats);
  ASSERT_EQ(records.size(), 3u * TCPTRAIL_CONN_RECORD_SIZE);
  for (std::size_t i = 0; i < 3; ++i) {
    auto c = decode_connection(
        records.subspan(i * TCPTRAIL_CONN_RECORD_SIZE, TCPTRAIL_CONN_RECORD_SIZE), stats);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->conn_id, 100 + i);
    EXPECT_EQ(c->lport, 443);
  }
  EXPECT_EQ(stats.decoded, 3u) << "a batch counts its records, not itself";
  EXPECT_EQ(batched_connections(bytes_of(sample_batch(TCPTRAIL_BATCH_MAX)), stats).size(),
            std::size_t{TCPTRAIL_BATCH_MAX} * TCPTRAIL_CONN_RECORD_SIZE);
  EXPECT_EQ(stats.rejected, 0u);
}

TEST(Decode, RejectsMalformedBatches) {
  DecodeStats stats;
  EXPECT_TRUE(batched_connections(bytes_of(sample_batch(0)), stats).empty());
  EXPECT_TRUE(batched_connections(bytes_of(sample_batch(TCPTRAIL_BATCH_MAX + 1)), stats).empty());
  tcptrail_conn_batch wrong_kind = sample_batch(2);
  wrong_kind.hdr.kind = TCPTRAIL_EV_CONNECTION;
  EXPECT_TRUE(batched_connections(bytes_of(wrong_kind), stats).empty());
  const auto whole = bytes_of(sample_batch(2));
  EXPECT_TRUE(batched_connections(std::span(whole).first(whole.size() - 1), stats).empty());
  EXPECT_TRUE(batched_connections(bytes_of(sample_connection()), stats).empty());
  EXPECT_EQ(stats.rejected, 5u);
}

TEST(Decode, LifecycleRoundTripsThroughTheMapEntry) {
  Connection conn;
  conn.conn_id = 3;
  conn.sock_cookie = 4;
  conn.first_ns = 10;
  conn.state_since_ns = 20;
  conn.state = TcpState::kCloseWait;
  conn.role = Role::kClient;
  conn.preexisting = true;
  conn.sock_ino = 55;
  conn.owner.pid = 7;
  conn.owner.source = OwnerSource::kFdScan;
  conn.path.push(TcpState::kCloseWait);
  Connection back;
  ASSERT_TRUE(decode_lifecycle(encode_lifecycle(conn), back));
  EXPECT_EQ(back.conn_id, 3u);
  EXPECT_EQ(back.first_ns, 10u);
  EXPECT_EQ(back.state_since_ns, 20u);
  EXPECT_EQ(back.state, TcpState::kCloseWait);
  EXPECT_EQ(back.role, Role::kClient);
  EXPECT_TRUE(back.preexisting);
  EXPECT_EQ(back.sock_ino, 55u);
  EXPECT_EQ(back.owner.pid, 7u);
  EXPECT_EQ(back.owner.source, OwnerSource::kFdScan);
  ASSERT_EQ(back.path.size, 1);
  EXPECT_EQ(back.path.states[0], TcpState::kCloseWait);
}

}  // namespace
}  // namespace tcptrail
