#include "tcptrail/decode.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tcptrail/events.h"

namespace tcptrail {
namespace {

std::vector<std::byte> bytes_of(const tcptrail_event& raw) {
  std::vector<std::byte> out(sizeof(raw));
  std::memcpy(out.data(), &raw, sizeof(raw));
  return out;
}

tcptrail_event sample() {
  tcptrail_event raw{};
  raw.ts_ns = 123;
  raw.sock_cookie = (1ull << 60) + 7;
  raw.kind = TCPTRAIL_EV_STATE;
  raw.family = 4;
  raw.old_state = 1;
  raw.new_state = 4;
  raw.saddr[0] = 127;
  raw.saddr[3] = 1;
  raw.sport = 8080;
  raw.owner_pid = 42;
  raw.owner_source = TCPTRAIL_OWNER_SYSCALL;
  std::memcpy(raw.owner_comm, "0123456789abcdef", 16);  // full 16 bytes, no NUL
  raw.sk_err = 104;
  return raw;
}

TEST(Decode, DecodesEveryField) {
  DecodeStats stats;
  auto e = decode_event(bytes_of(sample()), stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sock_cookie, (1ull << 60) + 7);
  EXPECT_EQ(e->kind, EventKind::kState);
  EXPECT_EQ(e->old_state, TcpState::kEstablished);
  EXPECT_EQ(e->new_state, TcpState::kFinWait1);
  EXPECT_EQ(e->laddr.to_string(), "127.0.0.1");
  EXPECT_EQ(e->lport, 8080);
  EXPECT_EQ(e->owner.pid, 42u);
  EXPECT_EQ(e->owner.source, OwnerSource::kSyscall);
  EXPECT_EQ(e->owner.comm_view(), "0123456789abcdef");
  EXPECT_EQ(e->sk_err, 104);
  EXPECT_EQ(stats.decoded, 1u);
}

TEST(Decode, RejectsWrongSizeKindAndFamily) {
  DecodeStats stats;
  auto good = bytes_of(sample());
  EXPECT_FALSE(decode_event(std::span(good).first(good.size() - 1), stats));
  std::vector<std::byte> longer = good;
  longer.push_back(std::byte{0});
  EXPECT_FALSE(decode_event(longer, stats));
  tcptrail_event raw = sample();
  raw.kind = 77;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  raw = sample();
  raw.family = 5;
  EXPECT_FALSE(decode_event(bytes_of(raw), stats));
  EXPECT_EQ(stats.rejected, 4u);
  EXPECT_EQ(stats.decoded, 0u);
}

TEST(Decode, UnknownOwnerSourceBecomesUnknown) {
  DecodeStats stats;
  tcptrail_event raw = sample();
  raw.owner_source = 200;
  auto e = decode_event(bytes_of(raw), stats);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->owner.source, OwnerSource::kUnknown);
}

}  // namespace
}  // namespace tcptrail
