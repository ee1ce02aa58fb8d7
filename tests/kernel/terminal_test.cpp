// Process names a local user chooses, through every text view and summary of the real binary:
// no byte that could drive a terminal reaches its stdout.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/environment.hpp"
#include "support/peer.hpp"
#include "support/tracer.hpp"

namespace tt {
namespace {

// At most 15 bytes each: what the kernel keeps of a name set with prctl(PR_SET_NAME).
const std::vector<std::string> kHostileNames = {
    "\x1b[2J\x1b[31mred",  // ESC, CSI: clear the screen, recolour it
    "\x1b]0;title\x07",    // OSC: set the window title
    "tt\nFORGED 1 2",      // a forged line
    "\xc2\x9b"             // NOLINT(bugprone-suspicious-missing-comma): split to end the \x escape
    "31m\r\b",             // C1 CSI, CR, BS
    "\xe2\x80\xae"
    "txt.exe",  // RIGHT-TO-LEFT OVERRIDE
    "\xe2\x81\xa6\xe2\x80\x8f"
    "x",  // LEFT-TO-RIGHT ISOLATE, RIGHT-TO-LEFT MARK
    "\xff\xfe\xc3"
    "bad",  // invalid UTF-8
};

// Every byte is printable ASCII or a newline.
::testing::AssertionResult inert(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte != '\n' && (byte < 0x20 || byte >= 0x7f)) {
      return ::testing::AssertionFailure() << "byte 0x" << std::hex << static_cast<int>(byte)
                                           << " at " << std::dec << i << " in:\n"
                                           << text.substr(0, 4000);
    }
  }
  return ::testing::AssertionSuccess();
}

// Waits until a text tracer has written something (its header: the programs are attached).
// Under qemu without KVM (scripts/vm-test.sh) loading and verifying the programs alone takes
// seconds, more on a busy host: a deadline that only a hung tracer misses.
void wait_started(Process& tracer, const std::string& marker) {
  const auto deadline = Clock::now() + 30s;
  while (tracer.out().find(marker) == std::string::npos) {
    if (Clock::now() >= deadline || !tracer.running()) {
      throw std::runtime_error("tracer did not start: " + tracer.err());
    }
    std::this_thread::sleep_for(20ms);
  }
}

TEST(TerminalTest, HostileNamesReachNoViewOrSummaryRaw) {
  TT_REQUIRE_KERNEL();
  for (const std::string& name : kHostileNames) {
    SCOPED_TRACE("name of " + std::to_string(name.size()) + " bytes, first 0x" +
                 std::to_string(static_cast<unsigned char>(name[0])));
    const std::string bin = tcptrail_binary();
    std::vector<std::unique_ptr<Process>> tracers;
    tracers.push_back(
        std::make_unique<Process>(SpawnOptions{{bin, "--transitions"}, {}, false, {}}));
    tracers.push_back(
        std::make_unique<Process>(SpawnOptions{{bin, "--retransmits"}, {}, false, {}}));
    tracers.push_back(std::make_unique<Process>(
        SpawnOptions{{bin, "leaks", "--close-wait-timeout", "1s"}, {}, false, {}}));
    wait_started(*tracers[0], "TIME");
    wait_started(*tracers[1], "TIME");
    wait_started(*tracers[2], "tcptrail leaks");

    // A server that keeps its socket in CLOSE_WAIT, and a client that ends with a RST.
    Server server = start_server(
        "127.0.0.1", {"--close-first", "client", "--close-delay-ms", "600000", "--name", name});
    Process client =
        spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(server.port),
                    "--close-first", "client", "--name", name});
    client.wait_event("connected");
    server.process.wait_event("peer_closed");
    Server reset_server = start_server("127.0.0.1", {"--close-first", "client"});
    Process reset_client =
        spawn_peer({"client", "--addr", "127.0.0.1", "--port", std::to_string(reset_server.port),
                    "--close-first", "client", "--linger0", "--name", name});
    expect_clean_exit(reset_client);
    expect_clean_exit(reset_server.process);
    // The leak is due after 1 s; the view renders once a second.
    std::this_thread::sleep_for(3500ms);

    for (auto& tracer : tracers) {
      tracer->send_signal(SIGINT);
      const auto status = tracer->wait(10s);
      ASSERT_TRUE(status && status->exit_code == 0) << tracer->command_line() << tracer->err();
      EXPECT_TRUE(inert(tracer->out())) << tracer->command_line();
      EXPECT_NE(tracer->out().find("\\x"), std::string::npos)
          << tracer->command_line() << " shows no escaped name:\n"
          << tracer->out();
    }
    const std::string client_pid = std::to_string(client.pid());
    const std::string server_pid = std::to_string(server.process.pid());
    EXPECT_NE(tracers[0]->out().find(client_pid + " "), std::string::npos) << tracers[0]->out();
    EXPECT_NE(tracers[1]->out().find("RST"), std::string::npos) << tracers[1]->out();
    const std::string& leaks = tracers[2]->out();
    EXPECT_NE(leaks.find(server_pid + " "), std::string::npos) << leaks;
    const std::size_t summary = leaks.find("Leaks per process:\n");
    ASSERT_NE(summary, std::string::npos) << leaks;
    EXPECT_NE(leaks.find("  " + server_pid + " ", summary), std::string::npos) << leaks;
  }
}

}  // namespace
}  // namespace tt
