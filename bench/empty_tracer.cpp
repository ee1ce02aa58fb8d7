// Attaches bench/empty.bpf.c and waits for SIGINT or SIGTERM: bench/run.sh's `empty` mode.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "empty_bpf.skel.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_signal(int /*signo*/) {
  g_stop = 1;
}
}  // namespace

int main() {
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  empty_bpf* skel = empty_bpf__open_and_load();
  if (skel == nullptr || empty_bpf__attach(skel) != 0) {
    std::perror("tcptrail_empty_tracer: cannot load or attach the empty program");
    empty_bpf__destroy(skel);
    return 1;
  }
  while (g_stop == 0) {
    pause();
  }
  empty_bpf__destroy(skel);
  return 0;
}
