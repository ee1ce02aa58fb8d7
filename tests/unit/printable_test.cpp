// The terminal gate (printable) and every text view and summary fed the same hostile names.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "record_fixtures.hpp"
#include "sinks/format.hpp"
#include "sinks/leaks_view.hpp"
#include "sinks/text_sink.hpp"

namespace tcptrail {
namespace {

using namespace fixtures;  // NOLINT(google-build-using-namespace)

// What a local user can name a process (15 bytes reach comm): each drives a terminal or
// reorders what the operator reads if printed raw.
const std::vector<std::string> kHostileNames = {
    "\x1b[2J\x1b[31mred",  // ESC, CSI: clear screen, colour
    "\x1b]0;pwned\x07",    // OSC: window title
    "a\nforged line",      // a forged line
    "\r\b\t\x7f",          // C0 and DEL
    "\xc2\x9b"             // NOLINT(bugprone-suspicious-missing-comma): split to end the \x escape
    "31m",                 // C1 CSI (U+009B)
    "\xe2\x80\xae"
    "gnp.exe",  // RIGHT-TO-LEFT OVERRIDE
    "\xe2\x81\xa6"
    "x\xe2\x81\xa9",         // LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE
    "\xe2\x80\x8f\xd8\x9c",  // RIGHT-TO-LEFT MARK, ARABIC LETTER MARK
    "\xff\xfe\xc3",          // invalid UTF-8, truncated sequence
};

// Every byte of the output is printable ASCII or the view's own newline.
void expect_inert(const std::string& text) {
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    ASSERT_TRUE(byte == '\n' || (byte >= 0x20 && byte < 0x7f))
        << "byte 0x" << std::hex << static_cast<int>(byte) << " in:\n"
        << text;
  }
}

TEST(Printable, PassesPrintableAsciiAndDoublesBackslashes) {
  EXPECT_EQ(printable("curl-7.88 [x]"), "curl-7.88 [x]");
  EXPECT_EQ(printable("a\\b"), "a\\\\b");
  EXPECT_EQ(printable(""), "");
}

TEST(Printable, EscapesEveryOtherByte) {
  EXPECT_EQ(printable(std::string("\x00\n\x1b\x7f", 4)), "\\x00\\x0a\\x1b\\x7f");
  EXPECT_EQ(printable("\xc2\x9b"), "\\xc2\\x9b");
  EXPECT_EQ(printable("\xe2\x80\xae"), "\\xe2\\x80\\xae");
  EXPECT_EQ(printable("\xe2\x81\xa6"), "\\xe2\\x81\\xa6");
  EXPECT_EQ(printable("\xd8\x9c"), "\\xd8\\x9c");
  EXPECT_EQ(printable("\xff"), "\\xff");
  for (int byte = 0; byte < 256; ++byte) {
    const std::string text = printable(std::string(1, static_cast<char>(byte)));
    expect_inert(text);
    EXPECT_EQ(text.find('\n'), std::string::npos);
  }
}

TEST(Printable, CutsAtAWholeEscape) {
  EXPECT_EQ(printable("abc\x01", 5), "abc");
  EXPECT_EQ(printable("abc\x01", 7), "abc\\x01");
  EXPECT_EQ(printable("a\\b", 2), "a");
}

Connection hostile_connection(const std::string& name) {
  Connection conn;
  conn.conn_id = 7;
  conn.owner.pid = 4242;
  set_comm(conn.owner, name);
  conn.owner.source = OwnerSource::kSyscall;
  conn.laddr = ipv4(10, 0, 0, 1);
  conn.raddr = ipv4(10, 0, 0, 2);
  conn.lport = 40000;
  conn.rport = 80;
  conn.role = Role::kClient;
  conn.first_ns = 1000 * kMs;
  conn.end_ns = 2000 * kMs;
  set_path(conn, {TcpState::kSynSent, TcpState::kEstablished, TcpState::kCloseWait});
  return conn;
}

StopInfo hostile_stop(const std::string& name) {
  StopInfo info;
  info.events = 3;
  info.connections = 1;
  const SummaryCounts counts{1, 1, 1, 1, 1, {}, {}, {}};
  info.per_process.push_back({4242, name, counts});
  info.per_peer.push_back({hostile_connection(name).raddr, 80, counts});
  return info;
}

Leak hostile_leak(const std::string& name) {
  Leak leak;
  leak.ts_ns = 1500 * kMs;
  leak.age_ns = 40'000 * kMs;
  leak.threshold_ns = 30'000 * kMs;
  leak.owners.push_back(FdOwner{4242, name, 5});
  return leak;
}

TEST(Printable, GuardsEveryTextView) {
  for (const std::string& name : kHostileNames) {
    SCOPED_TRACE(printable(name));
    const Connection conn = hostile_connection(name);
    const Leak leak = hostile_leak(name);
    for (const bool retransmits : {false, true}) {
      std::ostringstream out;
      {
        TextSink sink(
            out, kClock,
            TextOptions{.transitions = true, .retransmits_view = retransmits, .utc = true});
        sink.write(StartRecord{StartInfo{}});
        sink.write(ConnectionRecord{conn, 2000 * kMs});
        sink.write(
            StateRecord{conn, TcpState::kEstablished, TcpState::kCloseWait, 1, true, 2000 * kMs});
        sink.write(RetransmitRecord{conn, TcpState::kEstablished, 1, 2000 * kMs});
        sink.write(ResetRecord{conn, ResetDirection::kSent, TcpState::kEstablished, 2000 * kMs});
        sink.write(LeakRecord{conn, leak});
        sink.write(LeakResolvedRecord{conn, leak});
        sink.write(StopRecord{hostile_stop(name)});
        sink.flush();
      }
      expect_inert(out.str());
      EXPECT_NE(out.str().find("4242"), std::string::npos);
    }
    std::ostringstream out;
    LeaksView view(out, LeakConfig{}, false);
    view.render({Suspect{conn, leak}});
    Leak without_owners = leak;
    without_owners.owners.clear();
    view.render({Suspect{conn, without_owners}});
    view.write(StopRecord{hostile_stop(name)});
    expect_inert(out.str());
    EXPECT_NE(out.str().find("Leaks per process:\n  4242 "), std::string::npos);
  }
}

}  // namespace
}  // namespace tcptrail
