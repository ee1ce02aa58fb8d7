#include "loader/bpf_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <utility>
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
    return "run as root, or grant CAP_BPF and CAP_PERFMON";
  }
  return {};
}

// The privilege hint when err is a permission error, else `otherwise`.
std::string hint_for(int err, const char* otherwise) {
  const std::string privilege = privilege_hint(err);
  return privilege.empty() ? otherwise : privilege;
}

// The arguments of a tracepoint as its BTF prototype gives them (the first is the context,
// void *), or -1 when the kernel does not have it.
int tracepoint_arguments(const btf* vmlinux, const char* name) {
  const std::string type = std::string("btf_trace_") + name;
  const int id = btf__find_by_name_kind(vmlinux, type.c_str(), BTF_KIND_TYPEDEF);
  if (id <= 0) {
    return -1;
  }
  const btf_type* t = btf__type_by_id(vmlinux, id);
  t = t != nullptr ? btf__type_by_id(vmlinux, t->type) : nullptr;  // pointer
  t = t != nullptr ? btf__type_by_id(vmlinux, t->type) : nullptr;  // function prototype
  return t != nullptr && btf_is_func_proto(t) ? btf_vlen(t) : -1;
}

// Whether struct `type` has a member `member`, per the kernel's BTF.
bool has_member(const btf* vmlinux, const char* type, const char* member) {
  const int id = btf__find_by_name_kind(vmlinux, type, BTF_KIND_STRUCT);
  const btf_type* t = id > 0 ? btf__type_by_id(vmlinux, id) : nullptr;
  if (t == nullptr) {
    return false;
  }
  const btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i, ++m) {
    if (const char* name = btf__name_by_offset(vmlinux, m->name_off);
        name != nullptr && std::strcmp(name, member) == 0) {
      return true;
    }
  }
  return false;
}

// What the running kernel offers the programs, read from its BTF.
struct KernelFeatures {
  // tcp:tcp_retransmit_skb passes the transmit error (void *, sk, skb, err).
  bool retransmit_has_err = false;
  // tcp:tcp_sendmsg_locked exists: a server child is named at its first write.
  bool sendmsg_locked = false;
  // sock.sk_cgrp_data.cgroup exists (CONFIG_SOCK_CGROUP_DATA, 5.15+): sockets have a cgroup.
  bool sock_cgroup = false;
};

KernelFeatures read_kernel_features() {
  KernelFeatures found;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux != nullptr) {
    found.retransmit_has_err = tracepoint_arguments(vmlinux, "tcp_retransmit_skb") >= 4;
    found.sendmsg_locked = tracepoint_arguments(vmlinux, "tcp_sendmsg_locked") >= 2;
    found.sock_cgroup = has_member(vmlinux, "sock_cgroup_data", "cgroup");
    btf__free(vmlinux);
  }
  return found;
}

}  // namespace

void BpfTracer::SkelDeleter::operator()(tcptrail_bpf* skel) const {
  tcptrail_bpf__destroy(skel);
}

BpfTracer::BpfTracer(const LoaderConfig& config) {
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
  const KernelFeatures kernel = read_kernel_features();
  if (!kernel.sendmsg_locked) {
    missing_.push_back({"first_write_owner",
                        "tcp:tcp_sendmsg_locked is missing: a server child that writes before it "
                        "reads is named by its listener's owner until its first read or close()"});
  }
  if (!kernel.sock_cgroup) {
    missing_.push_back({"cgroup",
                        "sock.sk_cgrp_data.cgroup is missing (CONFIG_SOCK_CGROUP_DATA off, or "
                        "before Linux 5.15): records carry cgroup 0"});
  }
  const bool retransmit_err = kernel.retransmit_has_err;
  bpf_program__set_autoload(skel_->progs.tp_btf__tcp_retransmit_skb, !retransmit_err);
  bpf_program__set_autoload(skel_->progs.tp_btf__tcp_retransmit_skb_err, retransmit_err);
  bpf_program__set_autoload(skel_->progs.tp_btf__tcp_sendmsg_locked, kernel.sendmsg_locked);
  skel_->rodata->target_family = config.family;
  skel_->rodata->wakeup_events = config.wakeup_events;
  skel_->rodata->emit_transitions = config.transitions ? 1 : 0;
  if (bpf_map__set_max_entries(skel_->maps.conns, config.max_connections) != 0) {
    throw TraceError("cannot size the connection table", EINVAL);
  }
  const int possible_cpus = libbpf_num_possible_cpus();
  if (possible_cpus <= 0) {
    throw TraceError("cannot count the possible CPUs", -possible_cpus);
  }
  for (const std::uint32_t cpu : config.cpus) {
    if (cpu >= static_cast<std::uint32_t>(possible_cpus)) {
      throw TraceError("CPU " + std::to_string(cpu) + " is not a possible CPU", EINVAL);
    }
    ring_fds_.emplace_back(bpf_map_create(BPF_MAP_TYPE_RINGBUF, "tcptrail_ring", 0, 0,
                                          static_cast<__u32>(config.ring_buffer_bytes), nullptr));
    if (!ring_fds_.back()) {
      const int err = errno;
      throw TraceError(
          "cannot create a ring buffer of " + std::to_string(config.ring_buffer_bytes >> 20) +
              " MiB: " + std::strerror(err),
          err, hint_for(err, "lower --ring-buffer-mib; the size must be a power of two"));
    }
  }
  if (ring_fds_.empty()) {
    throw TraceError("no online CPU to trace", EINVAL);
  }
  // The first ring is the template the verifier checks the programs' use of rings against.
  if (bpf_map__set_max_entries(skel_->maps.rings, static_cast<__u32>(possible_cpus)) != 0 ||
      bpf_map__set_inner_map_fd(skel_->maps.rings, ring_fds_.front().get()) != 0) {
    throw TraceError("cannot set up the ring buffers", EINVAL);
  }

  if (int err = tcptrail_bpf__load(skel_.get()); err != 0) {
    throw TraceError("cannot load the BPF programs: " + std::string(std::strerror(-err)), -err,
                     hint_for(-err, "rerun with -v for the verifier log"));
  }

  // Rings before programs: an event on a CPU without one is lost.
  for (std::size_t i = 0; i < config.cpus.size(); ++i) {
    const int fd = ring_fds_[i].get();
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.rings), &config.cpus[i], &fd, BPF_ANY) != 0) {
      throw TraceError("cannot install the ring buffer of CPU " + std::to_string(config.cpus[i]),
                       errno);
    }
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
      {skel_->progs.tp_btf__tcp_destroy_sock, &skel_->links.tp_btf__tcp_destroy_sock,
       "tcp:tcp_destroy_sock"},
      {skel_->progs.tp_btf__tcp_rcv_space_adjust, &skel_->links.tp_btf__tcp_rcv_space_adjust,
       "tcp:tcp_rcv_space_adjust"},
      // Servers that write first are named at their first write where the kernel has this
      // tracepoint; elsewhere at their first read or their close().
      {kernel.sendmsg_locked ? skel_->progs.tp_btf__tcp_sendmsg_locked : nullptr,
       &skel_->links.tp_btf__tcp_sendmsg_locked, "tcp:tcp_sendmsg_locked"},
  };
  for (const Attach& a : attaches) {
    if (a.prog == nullptr) {
      continue;
    }
    *a.link = bpf_program__attach(a.prog);
    if (*a.link == nullptr) {
      const int err = errno;
      throw TraceError(std::string("cannot attach to tracepoint ") + a.tracepoint + ": " +
                           std::strerror(err),
                       err, privilege_hint(err));
    }
  }

  cpus_ = config.cpus;
  // Records are staged only where every CPU can be made to send its stage.
  if (const int error = flush_staged(); error == 0) {
    skel_->bss->stage_connections = 1;
  } else if (g_verbose) {
    std::fprintf(stderr,
                 "tcptrail: cannot run the flush program on every CPU (%s): connection "
                 "records travel one by one\n",
                 std::strerror(error));
  }
  std::vector<int> fds;
  for (const sys::UniqueFd& ring : ring_fds_) {
    fds.push_back(ring.get());
  }
  rings_ = std::make_unique<RingSet>(fds, config.ring_buffer_bytes);
  connections_ = std::make_unique<KernelConnections>(
      bpf_map__fd(skel_->maps.conns), bpf_map__fd(skel_->maps.listeners), &skel_->bss->last_conn_id,
      bpf_map__fd(skel_->maps.netns_active), &skel_->bss->active_gen);
}

BpfTracer::~BpfTracer() = default;

int BpfTracer::flush_staged() {
  const int fd = bpf_program__fd(skel_->progs.raw_tp__flush_staged);
  int error = 0;
  for (const std::uint32_t cpu : cpus_) {
    std::array<__u64, 1> args = {0};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = args.data(), .ctx_size_in = sizeof(args),
                .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);
    if (bpf_prog_test_run_opts(fd, &opts) == 0) {
      continue;
    }
    if (errno == ENXIO) {
      // Gone offline: its stage is sent from this CPU.
      args[0] = __u64{cpu} + 1;
      LIBBPF_OPTS(bpf_test_run_opts, here, .ctx_in = args.data(), .ctx_size_in = sizeof(args));
      if (bpf_prog_test_run_opts(fd, &here) == 0 && here.retval == 0) {
        continue;
      }
      if (!offline_stage_warned_) {
        offline_stage_warned_ = true;
        std::fprintf(stderr,
                     "tcptrail: CPU %u went offline and this kernel cannot send the connection "
                     "records it staged (before 5.19): they come when it is back, and are lost "
                     "if tracing ends first\n",
                     cpu);
      }
      continue;
    }
    if (error == 0) {
      error = errno;
    }
  }
  return error;
}

std::size_t BpfTracer::poll(RecordHandler& handler, int timeout_ms) {
  // Staged records wait for a CPU's next record; a CPU that went quiet is told to send them.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_flush_ >= kStagedFlushInterval) {
    flush_staged();
    last_flush_ = now;
  }
  // Records are submitted without a wakeup until a CPU has queued enough, so a timeout does not
  // mean the ring is empty: read whatever is there either way.
  rings_->wait(timeout_ms);
  std::size_t count = rings_->consume(handler);
  if (now - last_held_release_ >= kHeldRecordWait) {
    count += release_held(handler, kHeldRecordWait, 1);
    last_held_release_ = now;
  }
  return count;
}

std::size_t BpfTracer::drain(RecordHandler& handler) {
  // Nothing would take a record out of `held` after this: from now on they go at once.
  skel_->bss->draining = 1;
  flush_staged();
  const std::size_t count = rings_->consume_all(handler);
  held_batch_.reset();
  return count + release_held(handler, std::chrono::nanoseconds{0},
                              std::numeric_limits<std::size_t>::max());
}

std::size_t BpfTracer::release_held(RecordHandler& handler, std::chrono::nanoseconds wait,
                                    std::size_t batches) {
  const int fd = bpf_map__fd(skel_->maps.held);
  const std::uint64_t now_ns = monotonic_ns();
  held_keys_.resize(kHeldBatch);
  held_values_.resize(kHeldBatch);
  std::size_t count = 0;
  for (std::size_t batch = 0; batch < batches; ++batch) {
    __u32 read = kHeldBatch;
    __u32 next = 0;
    const bool last =
        bpf_map_lookup_batch(fd, held_batch_ ? &*held_batch_ : nullptr, &next, held_keys_.data(),
                             held_values_.data(), &read, nullptr) != 0;
    if (last && errno != ENOENT) {
      read = 0;  // ENOENT: the end, with what was read; anything else: nothing read
    }
    for (std::size_t i = 0; i < read; ++i) {
      const tcptrail_held& parts = held_values_[i];
      // The kernel stamps a part's header last. A reset waits for its record; one left alone
      // (its CLOSE skipped) goes after the same wait. Stamped during this call: not due.
      const bool has_record =
          parts.record.hdr.kind == TCPTRAIL_EV_CONNECTION && parts.record.hdr.family != 0;
      const std::uint64_t since = has_record ? parts.record.hdr.ts_ns : parts.reset.hdr.ts_ns;
      if (since == 0 || since > now_ns || now_ns - since < std::uint64_t(wait.count()) ||
          bpf_map_delete_elem(fd, &held_keys_[i]) != 0) {
        continue;  // not due, or the kernel sent it meanwhile
      }
      if (parts.reset.hdr.kind == TCPTRAIL_EV_RESET_RECEIVED) {
        handler.on_record(std::as_bytes(std::span(&parts.reset, 1)));
        ++count;
      }
      if (has_record) {
        handler.on_record(std::as_bytes(std::span(&parts.record, 1)));
        ++count;
      }
    }
    if (last) {
      held_batch_.reset();
      break;
    }
    held_batch_ = next;
  }
  return count;
}

std::uint64_t BpfTracer::drops(std::uint32_t index) const {
  const int ncpus = libbpf_num_possible_cpus();
  std::vector<__u64> per_cpu(static_cast<std::size_t>(ncpus > 0 ? ncpus : 1));
  std::uint64_t sum = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.drops), &index, per_cpu.data()) == 0) {
    for (__u64 v : per_cpu) {
      sum += v;
    }
  }
  return sum;
}

void BpfTracer::count_lost(RunStats& run) const {
  // The kernel skips a program that fires while it already runs on the same CPU (a softirq
  // interrupting it in process context, bpf_trace_run's recursion check): its events are lost
  // too, and counted only here.
  std::uint64_t skipped = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    bpf_prog_info info{};
    __u32 size = sizeof(info);
    const int fd = bpf_program__fd(prog);
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &size) == 0) {
      skipped += info.recursion_misses;
    }
  }
  run.lost_connections = drops(TCPTRAIL_DROP_CONNECTION);
  run.lost_ring_full = drops(TCPTRAIL_DROP_RINGBUF) + run.lost_connections;
  run.lost_no_ring = drops(TCPTRAIL_DROP_NO_RING);
  run.lost_skipped = skipped;
  run.lost = run.lost_ring_full + run.lost_no_ring + run.lost_skipped;
  run.overflow = drops(TCPTRAIL_DROP_TABLE_FULL);
}

LiveConnections::Seeded KernelConnections::seed(Connection& conn) {
  conn.conn_id = __atomic_add_fetch(last_conn_id_, 1, __ATOMIC_RELAXED);
  const tcptrail_conn raw = encode_lifecycle(conn);
  const __u64 key = conn.sock_cookie;
  if (bpf_map_update_elem(conns_fd_, &key, &raw, BPF_NOEXIST) == 0) {
    return Seeded::kAdded;
  }
  return errno == EEXIST ? Seeded::kKnown : Seeded::kFull;
}

void KernelConnections::seed_listener(std::uint32_t netns_ino, std::uint16_t port,
                                      const Owner& owner) {
  const __u64 key = (__u64{netns_ino} << 16) | port;
  tcptrail_listener value{};
  value.pid = owner.pid;
  std::memcpy(value.comm, owner.comm.data(), sizeof(value.comm));
  // A listener that (re)started since the snapshot is known better by the kernel.
  bpf_map_update_elem(listeners_fd_, &key, &value, BPF_NOEXIST);
}

std::optional<Connection> KernelConnections::find(std::uint64_t sock_cookie) const {
  tcptrail_conn raw;
  const __u64 key = sock_cookie;
  Connection conn;
  conn.sock_cookie = sock_cookie;
  if (bpf_map_lookup_elem(conns_fd_, &key, &raw) != 0 || !decode_lifecycle(raw, conn)) {
    return std::nullopt;
  }
  return conn;
}

std::size_t KernelConnections::open() const {
  std::size_t count = 0;
  __u64 key = 0;
  __u64 next = 0;
  tcptrail_conn raw;
  for (const __u64* prev = nullptr; bpf_map_get_next_key(conns_fd_, prev, &next) == 0;
       prev = &key) {
    key = next;
    if (bpf_map_lookup_elem(conns_fd_, &key, &raw) == 0 && !(raw.flags & TCPTRAIL_C_CLOSED)) {
      ++count;
    }
  }
  return count;
}

std::optional<std::vector<std::uint32_t>> KernelConnections::take_active_namespaces() {
  std::vector<std::uint32_t> active;
  __u32 key = 0;
  __u32 next = 0;
  for (const __u32* prev = nullptr; bpf_map_get_next_key(netns_active_fd_, prev, &next) == 0;
       prev = &key) {
    key = next;
    active.push_back(key);
  }
  // Only the keys read: one put since stays for the next take. The programs put each
  // namespace once per generation on each CPU, so the generation moves after the deletes.
  for (__u32 netns : active) {
    bpf_map_delete_elem(netns_active_fd_, &netns);
  }
  __atomic_add_fetch(active_gen_, 1, __ATOMIC_RELEASE);
  return active;
}

}  // namespace tcptrail
