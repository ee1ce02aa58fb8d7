// The role of a socket found at start, from its ports alone: the listeners found with it and
// the namespace's ephemeral range.
#include <gtest/gtest.h>

#include <vector>

#include "tcptrail/collector.hpp"

namespace tcptrail {
namespace {

SocketSnapshot socket_between(std::uint16_t lport, std::uint16_t rport) {
  SocketSnapshot s;
  s.lport = lport;
  s.rport = rport;
  s.state = TcpState::kEstablished;
  return s;
}

const NamespacePorts kRange{32768, 60999, 60999 - 32768 + 1, 2, ""};

TEST(PreexistingRole, ListenedPortIsAServer) {
  const std::vector<std::uint16_t> listening = {80, 443};
  EXPECT_EQ(preexisting_role(socket_between(443, 40000), listening, kRange), Role::kServer);
  EXPECT_EQ(preexisting_role(socket_between(443, 40000), listening, NamespacePorts{}),
            Role::kServer);
}

TEST(PreexistingRole, EphemeralLocalPortIsAClient) {
  EXPECT_EQ(preexisting_role(socket_between(40000, 5432), {}, kRange), Role::kClient);
  EXPECT_EQ(preexisting_role(socket_between(40000, 45000), {}, kRange), Role::kClient);
}

// nginx reloaded or a server that closed its listener: its accepted sockets live on, on the
// service port, towards clients' ephemeral ports.
TEST(PreexistingRole, ChildWhoseListenerIsGoneIsAServer) {
  EXPECT_EQ(preexisting_role(socket_between(8080, 40000), {}, kRange), Role::kServer);
}

TEST(PreexistingRole, NeitherSideEphemeralIsUnknown) {
  EXPECT_EQ(preexisting_role(socket_between(8080, 5432), {}, kRange), Role::kUnknown);
}

TEST(PreexistingRole, UnknownRangeFallsBackToClient) {
  EXPECT_EQ(preexisting_role(socket_between(8080, 40000), {}, NamespacePorts{}), Role::kClient);
}

}  // namespace
}  // namespace tcptrail
