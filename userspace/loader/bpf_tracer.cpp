#include "loader/bpf_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tcptrail/error.hpp"
#include "tcptrail/events.h"
#include "tcptrail_bpf.skel.h"

namespace tcptrail {

namespace {

bool g_verbose = false;

// libbpf's own messages are noise unless asked for: every failure is reported by TraceError.
int print_libbpf(enum libbpf_print_level /*level*/, const char* format, va_list args) {
  return g_verbose ? std::vfprintf(stderr, format, args) : 0;
}

std::string privilege_hint(int err) {
  if (err == EPERM || err == EACCES) {
    return "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN";
  }
  return {};
}

// Whether tcp:tcp_retransmit_skb passes the transmit error (void *, sk, skb, err), read from
// the kernel's BTF for the tracepoint's prototype.
bool retransmit_tracepoint_has_err() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    return false;
  }
  bool has_err = false;
  const int id = btf__find_by_name_kind(vmlinux, "btf_trace_tcp_retransmit_skb", BTF_KIND_TYPEDEF);
  if (id > 0) {
    const btf_type* t = btf__type_by_id(vmlinux, id);
    t = t != nullptr ? btf__type_by_id(vmlinux, t->type) : nullptr;  // pointer
    t = t != nullptr ? btf__type_by_id(vmlinux, t->type) : nullptr;  // function prototype
    has_err = t != nullptr && btf_is_func_proto(t) && btf_vlen(t) >= 4;
  }
  btf__free(vmlinux);
  return has_err;
}

int on_ring_record(void* ctx, void* data, size_t size) {
  auto* handler = static_cast<RecordHandler*>(ctx);
  handler->on_record({static_cast<const std::byte*>(data), size});
  return 0;
}

}  // namespace

void BpfTracer::SkelDeleter::operator()(tcptrail_bpf* skel) const {
  tcptrail_bpf__destroy(skel);
}
void BpfTracer::RingDeleter::operator()(ring_buffer* rb) const {
  ring_buffer__free(rb);
}

BpfTracer::BpfTracer(const LoaderConfig& config, RecordHandler& handler) : handler_(handler) {
  g_verbose = config.verbose;
  libbpf_set_print(print_libbpf);

  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    throw TraceError(
        "kernel BTF not found at /sys/kernel/btf/vmlinux", errno,
        "tcptrail needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.14 or newer)");
  }

  skel_.reset(tcptrail_bpf__open());
  if (!skel_) {
    throw TraceError("cannot open the BPF object", errno);
  }
  const bool retransmit_err = retransmit_tracepoint_has_err();
  bpf_program__set_autoload(skel_->progs.tp_btf__tcp_retransmit_skb, !retransmit_err);
  bpf_program__set_autoload(skel_->progs.tp_btf__tcp_retransmit_skb_err, retransmit_err);
  skel_->rodata->target_family = config.family;
  skel_->rodata->wakeup_events = config.wakeup_events;
  if (int err = bpf_map__set_max_entries(skel_->maps.events,
                                         static_cast<__u32>(config.ring_buffer_bytes));
      err != 0) {
    throw TraceError("cannot size the ring buffer", -err, "the size must be a power of two");
  }

  if (int err = tcptrail_bpf__load(skel_.get()); err != 0) {
    throw TraceError("cannot load the BPF programs: " + std::string(std::strerror(-err)), -err,
                     privilege_hint(-err).empty() ? "rerun with -v for the verifier log"
                                                  : privilege_hint(-err));
  }

  // Attach one by one so that a missing tracepoint is named.
  struct Attach {
    bpf_program* prog;
    bpf_link** link;
    const char* tracepoint;
  };
  const Attach attaches[] = {
      {skel_->progs.tp_btf__inet_sock_set_state, &skel_->links.tp_btf__inet_sock_set_state,
       "sock:inet_sock_set_state"},
      retransmit_err
          ? Attach{skel_->progs.tp_btf__tcp_retransmit_skb_err,
                   &skel_->links.tp_btf__tcp_retransmit_skb_err, "tcp:tcp_retransmit_skb"}
          : Attach{skel_->progs.tp_btf__tcp_retransmit_skb,
                   &skel_->links.tp_btf__tcp_retransmit_skb, "tcp:tcp_retransmit_skb"},
      {skel_->progs.tp_btf__tcp_retransmit_synack, &skel_->links.tp_btf__tcp_retransmit_synack,
       "tcp:tcp_retransmit_synack"},
      {skel_->progs.tp_btf__tcp_send_reset, &skel_->links.tp_btf__tcp_send_reset,
       "tcp:tcp_send_reset"},
      {skel_->progs.tp_btf__tcp_receive_reset, &skel_->links.tp_btf__tcp_receive_reset,
       "tcp:tcp_receive_reset"},
      {skel_->progs.tp_btf__inet_sk_error_report, &skel_->links.tp_btf__inet_sk_error_report,
       "sock:inet_sk_error_report"},
  };
  for (const Attach& a : attaches) {
    *a.link = bpf_program__attach(a.prog);
    if (*a.link == nullptr) {
      const int err = errno;
      throw TraceError(std::string("cannot attach to tracepoint ") + a.tracepoint + ": " +
                           std::strerror(err),
                       err, privilege_hint(err));
    }
  }

  ring_.reset(
      ring_buffer__new(bpf_map__fd(skel_->maps.events), on_ring_record, &handler_, nullptr));
  if (!ring_) {
    throw TraceError("cannot open the ring buffer", errno);
  }
}

BpfTracer::~BpfTracer() = default;

int BpfTracer::poll(int timeout_ms) {
  int n = ring_buffer__poll(ring_.get(), timeout_ms);
  if (n < 0 && n != -EINTR) {
    throw TraceError("ring buffer poll failed", -n);
  }
  // Records are submitted without a wakeup until a CPU has queued enough, so a timeout does not
  // mean the ring is empty: read whatever is there.
  return std::max(n, 0) + drain();
}

int BpfTracer::drain() {
  int n = ring_buffer__consume(ring_.get());
  return n < 0 && n != -EINTR ? throw TraceError("ring buffer read failed", -n) : std::max(n, 0);
}

std::uint64_t BpfTracer::lost_events() const {
  const int ncpus = libbpf_num_possible_cpus();
  std::vector<__u64> per_cpu(static_cast<std::size_t>(ncpus > 0 ? ncpus : 1));
  const __u32 key = TCPTRAIL_DROP_RINGBUF;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.drops), &key, per_cpu.data()) != 0) {
    return 0;
  }
  std::uint64_t sum = 0;
  for (__u64 v : per_cpu) {
    sum += v;
  }
  return sum;
}

}  // namespace tcptrail
