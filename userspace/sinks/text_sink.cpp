#include "sinks/text_sink.hpp"

#include <time.h>

#include <array>
#include <charconv>
#include <cstdio>

#include "sinks/format.hpp"
#include "tcptrail/errno_name.hpp"

namespace tcptrail {
namespace {

constexpr std::size_t kTimeWidth = 12;
constexpr std::size_t kPidWidth = 7;
constexpr std::size_t kCommWidth = 16;
constexpr std::size_t kRoleWidth = 6;
constexpr std::size_t kEndpointWidth = 21;  // 255.255.255.255:65535; IPv6 pushes the line
constexpr std::size_t kDurationWidth = 8;
constexpr std::size_t kHandshakeWidth = 9;
constexpr std::size_t kBytesWidth = 6;
constexpr std::size_t kRetransmitsWidth = 4;
constexpr std::size_t kCloseWidth = 17;  // "host_unreachable "
constexpr std::size_t kStateWidth = 12;
constexpr std::size_t kKeyWidth = 28;
constexpr std::size_t kCountWidth = 8;
constexpr std::size_t kPercentilesWidth = 24;  // "59m59s/59m59s/59m59s" and two spaces

void left(std::string& out, std::string_view text, std::size_t width) {
  out.append(text);
  if (text.size() < width) {
    out.append(width - text.size(), ' ');
  }
  out.push_back(' ');
}

void right(std::string& out, std::string_view text, std::size_t width) {
  if (text.size() < width) {
    out.append(width - text.size(), ' ');
  }
  out.append(text);
  out.push_back(' ');
}

std::string number(std::uint64_t value) {
  char text[24];
  return {text, std::to_chars(text, text + sizeof(text), value).ptr};
}

std::string endpoint(const IpAddress& address, std::uint16_t port) {
  char text[kAddressTextMax];
  const std::string_view host(text, format_address(address, text));
  std::string out;
  if (address.family == 6) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out.append(":").append(number(port));
}

std::string_view state_abbreviation(TcpState state) {
  switch (state) {
    case TcpState::kEstablished:
      return "EST";
    case TcpState::kFinWait1:
      return "FW1";
    case TcpState::kFinWait2:
      return "FW2";
    case TcpState::kTimeWait:
      return "TW";
    case TcpState::kCloseWait:
      return "CW";
    case TcpState::kLastAck:
      return "LACK";
    case TcpState::kNewSynRecv:
      return "NSR";
    default:
      return state_name(state);
  }
}

std::string path_text(const StatePath& path) {
  std::string text;
  for (std::size_t i = 0; i < path.size; ++i) {
    if (i != 0) {
      text.push_back('>');
    }
    text.append(state_abbreviation(path.states[i]));
  }
  if (path.truncated) {
    text.append(">...");
  }
  return text;
}

std::string owner_text(std::uint32_t pid, std::string_view comm) {
  return number(pid).append("/").append(printable(comm, kCommWidth));
}

}  // namespace

TextSink::TextSink(std::ostream& out, WallClock clock, TextOptions options)
    : out_(out), clock_(clock), options_(options) {
  if (!options_.utc) {
    tzset();
  }
  buffer_.reserve(kFlushBytes + 4096);
}

TextSink::~TextSink() {
  write_buffer();
}

void TextSink::put(const StartRecord& /*record*/) {
  left(buffer_, "TIME", kTimeWidth);
  left(buffer_, "PID", kPidWidth);
  left(buffer_, "COMM", kCommWidth);
  if (options_.retransmits_view) {
    left(buffer_, "LOCAL", kEndpointWidth);
    left(buffer_, "REMOTE", kEndpointWidth);
    left(buffer_, "STATE", kStateWidth);
    left(buffer_, "EVENT", 0);
  } else {
    left(buffer_, "ROLE", kRoleWidth);
    left(buffer_, "LOCAL", kEndpointWidth);
    left(buffer_, "REMOTE", kEndpointWidth);
    right(buffer_, "DURATION", kDurationWidth);
    right(buffer_, "HANDSHAKE", kHandshakeWidth);
    right(buffer_, "TX", kBytesWidth);
    right(buffer_, "RX", kBytesWidth);
    right(buffer_, "RETR", kRetransmitsWidth);
    left(buffer_, "CLOSE", kCloseWidth);
    left(buffer_, "PATH", 0);
  }
  end_line();
}

void TextSink::put(const ConnectionRecord& record) {
  const auto& [conn, ts_ns, identity] = record;
  if (options_.retransmits_view) {
    return;
  }
  connection_prefix(conn, ts_ns);
  const auto duration = conn.duration_ns(ts_ns);
  right(buffer_, duration ? human_duration(*duration) : "-", kDurationWidth);
  right(buffer_, conn.has_handshake ? human_duration(std::uint64_t{conn.handshake_us} * 1000) : "-",
        kHandshakeWidth);
  right(buffer_, human_bytes(conn.tx_bytes), kBytesWidth);
  right(buffer_, human_bytes(conn.rx_bytes), kBytesWidth);
  right(buffer_, number(conn.retransmits), kRetransmitsWidth);
  left(buffer_, close_kind_name(conn.close), kCloseWidth);
  buffer_.append(path_text(conn.path));
  if (conn.error != 0) {
    buffer_.append(" (").append(errno_label(conn.error)).append(")");
  }
  end_line();
}

void TextSink::put(const StateRecord& record) {
  const auto& [conn, old_state, new_state, ns_in_old, ns_in_old_known, ts_ns, identity] = record;
  if (!options_.transitions || options_.retransmits_view) {
    return;
  }
  connection_prefix(conn, ts_ns);
  buffer_.append(state_name(old_state)).append(" -> ").append(state_name(new_state));
  if (ns_in_old_known) {
    buffer_.append(" after ").append(human_duration(ns_in_old));
  }
  end_line();
}

// Time, owner, endpoints and state: the columns every line of the retransmits view starts with.
void TextSink::connection_prefix(const Connection& conn, std::uint64_t ts_ns) {
  clock_time(ts_ns);
  process(conn.owner.pid, conn.owner.comm_view());
  left(buffer_, conn.role == Role::kUnknown ? "-" : role_name(conn.role), kRoleWidth);
  endpoints(conn);
}

void TextSink::retransmit_view_prefix(const Connection& conn, TcpState state, std::uint64_t ts_ns) {
  clock_time(ts_ns);
  process(conn.owner.pid, conn.owner.comm_view());
  endpoints(conn);
  left(buffer_, state_name(state), kStateWidth);
}

void TextSink::put(const RetransmitRecord& record) {
  const auto& [conn, state, segs, ts_ns, identity, count, last_ts_ns] = record;
  if (!options_.retransmits_view) {
    return;
  }
  retransmit_view_prefix(conn, state, ts_ns);
  buffer_.append("retransmit ").append(number(segs)).append(segs == 1 ? " seg" : " segs");
  if (count > 1) {
    buffer_.append(" x").append(number(count)).append(" in ");
    buffer_.append(human_duration(record.last_ns() - ts_ns));
  }
  end_line();
}

void TextSink::put(const ResetRecord& record) {
  const auto& [conn, direction, state, ts_ns, identity] = record;
  if (!options_.retransmits_view) {
    return;
  }
  retransmit_view_prefix(conn, state, ts_ns);
  buffer_.append(direction == ResetDirection::kSent ? "RST sent" : "RST received");
  end_line();
}

void TextSink::put(const LeakRecord& record) {
  const auto& [conn, leak, identity] = record;
  leak_line("LEAK", conn, leak);
  buffer_.append(" age ").append(human_duration(leak.age_ns));
  buffer_.append(" (threshold ").append(human_duration(leak.threshold_ns)).append(")");
  if (leak.orphan) {
    buffer_.append(" orphan");
  }
  buffer_.append(" owners ");
  if (leak.owners.empty()) {
    buffer_.append("-");
  }
  for (std::size_t i = 0; i < leak.owners.size(); ++i) {
    const FdOwner& owner = leak.owners[i];
    buffer_.append(i == 0 ? "" : ", ").append(owner_text(owner.pid, owner.comm));
    buffer_.append(" fd ").append(std::to_string(owner.fd));
  }
  end_line();
}

void TextSink::put(const LeakResolvedRecord& record) {
  const auto& [conn, leak, identity] = record;
  leak_line("LEAK resolved", conn, leak);
  buffer_.append(" after ").append(human_duration(leak.age_ns));
  buffer_.append(leak.went_to ? " to " : " ")
      .append(leak.went_to ? state_name(*leak.went_to) : std::string_view("gone"));
  end_line();
}

// Only asked for with --interim: a line per open connection and period, its traffic since the
// last one.
void TextSink::put(const InterimRecord& record) {
  const auto& [conn, state, srtt_us, since_last, total, ts_ns, identity] = record;
  if (options_.retransmits_view) {
    return;
  }
  connection_prefix(conn, ts_ns);
  buffer_.append("OPEN ")
      .append(state_name(state))
      .append(" tx +")
      .append(human_bytes(since_last.tx_bytes))
      .append(" rx +")
      .append(human_bytes(since_last.rx_bytes))
      .append(" retrans +")
      .append(number(since_last.retransmits))
      .append(" srtt ")
      .append(human_duration(std::uint64_t{srtt_us} * 1000));
  end_line();
}

void TextSink::put(const TimeWaitPressureRecord& record) {
  const TimeWaitPressure& pressure = record.pressure;
  clock_time(pressure.ts_ns);
  char local[kAddressTextMax];
  char ratio[16];
  std::snprintf(ratio, sizeof(ratio), "%.1f%%", pressure.ratio * 100);
  buffer_.append("LEAK time_wait ")
      .append(local, format_address(pressure.laddr, local))
      .append(" -> ")
      .append(endpoint(pressure.raddr, pressure.rport))
      .append(" ")
      .append(number(pressure.taken))
      .append(" ports taken (")
      .append(number(pressure.count))
      .append(pressure.reusable ? " TIME_WAIT, reusable, " : " TIME_WAIT, ")
      .append(number(pressure.live))
      .append(" live), ")
      .append(ratio)
      .append(" of ")
      .append(number(pressure.port_range))
      .append(" local ports");
  if (pressure.exhausted_in_ns) {
    buffer_.append(", none left in ").append(human_duration(*pressure.exhausted_in_ns));
  }
  buffer_.append(" (netns ").append(number(pressure.netns_ino));
  if (!pressure.netns_name.empty()) {
    buffer_.append(" ").append(printable(pressure.netns_name, 64));
  }
  buffer_.append(")");
  end_line();
}

void TextSink::put(const StopRecord& record) {
  const StopInfo& info = record.info;
  buffer_.append("\n");
  if (info.run.lost > 0) {
    buffer_.append("WARNING: ")
        .append(number(info.run.lost))
        .append(" events LOST (ring buffer full): the output above is incomplete\n");
  }
  buffer_.append("Summary: ")
      .append(number(info.events))
      .append(" events, ")
      .append(number(info.run.lost))
      .append(" lost, ")
      .append(number(info.connections))
      .append(" connections, ")
      .append(number(info.live))
      .append(" live at exit");
  if (info.rejected > 0) {
    buffer_.append(", ").append(number(info.rejected)).append(" malformed");
  }
  if (info.overflow > 0) {
    buffer_.append(", ").append(number(info.overflow)).append(" untracked (table full)");
  }
  end_line();
  count_table("PROCESS", info.per_process, process_label);
  count_table("PEER", info.per_peer, peer_label);
  open_leaks(info);
}

// The leaks nobody resolved, so that the last screen says what is still stuck and whose.
void TextSink::open_leaks(const StopInfo& info) {
  if (info.open_leak_count == 0) {
    return;
  }
  buffer_.append("\nLEAKS OPEN AT EXIT: ").append(number(info.open_leak_count));
  end_line();
  left(buffer_, "KIND", 10);
  right(buffer_, "AGE", kDurationWidth);
  left(buffer_, "STATE", kStateWidth);
  left(buffer_, "LOCAL", kEndpointWidth);
  left(buffer_, "REMOTE", kEndpointWidth);
  left(buffer_, "OWNER", 0);
  end_line();
  for (const auto& [conn, leak] : info.open_leaks) {
    left(buffer_, leak_kind_name(leak.kind), 10);
    right(buffer_, human_duration(leak.age_ns), kDurationWidth);
    left(buffer_, state_name(conn.state), kStateWidth);
    endpoints(conn);
    if (!leak.owners.empty()) {
      buffer_.append(owner_text(leak.owners.front().pid, leak.owners.front().comm));
      buffer_.append(" fd ").append(std::to_string(leak.owners.front().fd));
    } else if (conn.owner.known()) {
      buffer_.append(owner_text(conn.owner.pid, conn.owner.comm_view())).append(" (orphan)");
    } else {
      buffer_.append("no owner");
    }
    end_line();
  }
  if (info.open_leak_count > info.open_leaks.size()) {
    buffer_.append("... ")
        .append(number(info.open_leak_count - info.open_leaks.size()))
        .append(" more");
    end_line();
  }
}

void TextSink::write(const Record& record) {
  std::visit([this](const auto& r) { put(r); }, record);
}

void TextSink::flush() {
  write_buffer();
  out_.flush();
}

void TextSink::clock_time(std::uint64_t ts_ns) {
  const std::int64_t unix_ns = clock_.to_unix_ns(ts_ns);
  std::int64_t seconds = unix_ns / 1'000'000'000;
  std::int64_t nanos = unix_ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  const auto whole = static_cast<time_t>(seconds);
  tm parts{};
  if (options_.utc) {
    gmtime_r(&whole, &parts);
  } else {
    localtime_r(&whole, &parts);
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min,
                parts.tm_sec, static_cast<int>(nanos / 1'000'000));
  left(buffer_, text, kTimeWidth);
}

void TextSink::process(std::uint32_t pid, std::string_view comm) {
  left(buffer_, pid == 0 ? "-" : number(pid), kPidWidth);
  left(buffer_, comm.empty() ? "-" : printable(comm, kCommWidth), kCommWidth);
}

void TextSink::endpoints(const Connection& conn) {
  left(buffer_, endpoint(conn.laddr, conn.lport), kEndpointWidth);
  left(buffer_, endpoint(conn.raddr, conn.rport), kEndpointWidth);
}

void TextSink::leak_line(std::string_view marker, const Connection& conn, const Leak& leak) {
  clock_time(leak.ts_ns);
  buffer_.append(marker)
      .append(" ")
      .append(leak_kind_name(leak.kind))
      .append(" ")
      .append(endpoint(conn.laddr, conn.lport))
      .append(" -> ")
      .append(endpoint(conn.raddr, conn.rport));
  if (conn.owner.known()) {
    buffer_.append(" socket of ").append(owner_text(conn.owner.pid, conn.owner.comm_view()));
  }
}

template <typename Row>
void TextSink::count_table(std::string_view title, const std::vector<Row>& rows,
                           std::string (*label)(const Row&)) {
  if (rows.empty()) {
    return;
  }
  buffer_.append("\n");
  left(buffer_, title, kKeyWidth);
  right(buffer_, "CONNS", kCountWidth);
  right(buffer_, "FAILED", kCountWidth);
  right(buffer_, "RETRANS", kCountWidth);
  right(buffer_, "RESETS", kCountWidth);
  right(buffer_, "LEAKS", kCountWidth);
  right(buffer_, "LIFETIME p50/p90/p99", kPercentilesWidth);
  right(buffer_, "HANDSHAKE p50/p90/p99", kPercentilesWidth);
  end_line();
  for (const Row& row : rows) {
    left(buffer_, label(row), kKeyWidth);
    right(buffer_, number(row.counts.connections), kCountWidth);
    right(buffer_, number(row.counts.failed_connects), kCountWidth);
    right(buffer_, number(row.counts.retransmits), kCountWidth);
    right(buffer_, number(row.counts.resets), kCountWidth);
    right(buffer_, number(row.counts.leaks), kCountWidth);
    right(buffer_, percentiles_text(row.counts.lifetime), kPercentilesWidth);
    right(buffer_, percentiles_text(row.counts.handshake), kPercentilesWidth);
    end_line();
  }
}

void TextSink::end_line() {
  while (!buffer_.empty() && buffer_.back() == ' ') {
    buffer_.pop_back();
  }
  buffer_.push_back('\n');
  if (buffer_.size() >= kFlushBytes) {
    write_buffer();
  }
}

void TextSink::write_buffer() {
  if (!buffer_.empty()) {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
  }
}

}  // namespace tcptrail
