#include "analyzers/interim_tracker.hpp"

namespace tcptrail {

namespace {

std::uint64_t since(std::uint64_t now, std::uint64_t before) {
  return now >= before ? now - before : 0;
}

}  // namespace

TrafficCounts application_traffic(const Connection& conn, const SocketSnapshot& socket) {
  // As decode.cpp counts a connection record's bytes, for a socket still open: bytes_acked
  // counts our SYN and FIN, bytes_received the peer's FIN.
  const bool syn_counted = conn.role == Role::kClient && (conn.established || conn.preexisting);
  const bool fin_acked = socket.state == TcpState::kFinWait2 || socket.state == TcpState::kTimeWait;
  const bool peer_fin = socket.state == TcpState::kCloseWait ||
                        socket.state == TcpState::kLastAck || socket.state == TcpState::kClosing ||
                        socket.state == TcpState::kTimeWait;
  const std::uint64_t ours = (syn_counted ? 1 : 0) + (fin_acked ? 1 : 0);
  return {since(socket.bytes_acked, ours), since(socket.bytes_received, peer_fin ? 1 : 0),
          socket.total_retrans};
}

TrafficCounts InterimTracker::advance(std::uint64_t sock_cookie, const TrafficCounts& total) {
  TrafficCounts delta = total;
  const auto [found, first] = last_.try_emplace(sock_cookie);
  Seen& seen = found->second;
  if (!first) {
    const TrafficCounts& before = seen.total;
    delta = {since(total.tx_bytes, before.tx_bytes), since(total.rx_bytes, before.rx_bytes),
             since(total.retransmits, before.retransmits)};
  }
  seen = {total, dump_};
  return delta;
}

void InterimTracker::end_dump() {
  std::erase_if(last_, [this](const auto& entry) { return entry.second.dump != dump_; });
  ++dump_;
}

}  // namespace tcptrail
