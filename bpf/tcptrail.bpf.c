// SPDX-License-Identifier: GPL-2.0
/* TCP lifecycle tracing: every state change of a TCP socket and the events that explain how
 * it suffered or died (retransmits, resets, errors), streamed through one ring buffer per CPU.
 *
 * A socket is named by its cookie, which the kernel never reuses and sock_diag reports too.
 * No per-socket state is kept here: the collector remembers each socket's owner, learned from
 * the transitions that only system calls make. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "tcptrail/events.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set through the skeleton's rodata before load. */
const volatile __u8 target_family = 0;          /* 0: both, 4 or 6 */
const volatile __u32 wakeup_events = 2048; /* wake the collector once per this many, per CPU */

/* One ring buffer per CPU: a reservation takes only its own CPU's ring lock and producer
 * position, whose cache lines then stay on that CPU. With one ring shared by all CPUs they
 * bounced between CPUs on every event (measured on 2 CPUs: ~190 of ~320 ns per reservation
 * and commit). The collector merges the rings by timestamp. */
struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* the template; the loader sizes and creates each CPU's */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* resized by the loader to the number of possible CPUs */
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCPTRAIL_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Per-CPU scratch. child_sk/child_ts_ns: the last server child created on this CPU, by address
 * (a key here, never sent); its first reported transition follows in the same softirq and carries
 * how long ago it was created. unwoken: events submitted since this CPU last woke the collector. */
struct cpu_state {
	__u64 child_sk;
	__u64 child_ts_ns;
	__u32 unwoken;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

static __always_inline struct cpu_state *this_cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_states, &zero);
}

static __always_inline void count_drop(__u32 index)
{
	__u64 *count = bpf_map_lookup_elem(&drops, &index);

	if (count)
		*count += 1;
}

static __always_inline bool family_wanted(int family)
{
	return family && (!target_family || target_family == family);
}

static __always_inline void set_owner_current(struct tcptrail_event *e)
{
	/* Plain loads through the trusted task pointer: bpf_get_current_comm() copies with
	 * strscpy_pad() and cost more than the rest of the owner. The kernel keeps comm
	 * NUL-padded, so 16 bytes copy it whole. */
	struct task_struct *task = bpf_get_current_task_btf();

	e->owner_pid = task->tgid;
	e->owner_source = TCPTRAIL_OWNER_SYSCALL;
	__builtin_memcpy(e->owner_comm, task->comm, sizeof(e->owner_comm));
}

static __always_inline void submit(struct tcptrail_event *e, struct cpu_state *cpu)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	/* Batch wakeups: the collector also drains the ring on a short timeout, so a quiet stream
	 * is still flushed promptly; a busy one is woken once per wakeup_events per CPU. Counting
	 * here is far cheaper than bpf_ringbuf_query(), whose read of the consumer position
	 * bounces a cache line with the collector (measured: half of this program's time). */
	if (cpu && ++cpu->unwoken >= wakeup_events) {
		cpu->unwoken = 0;
		flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(e, flags);
}

static __always_inline struct tcptrail_event *reserve(int family, __u8 kind)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct tcptrail_event *e;
	void *ring;

	/* The program cannot migrate while it runs, so this CPU's ring is its own until submit. */
	ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		count_drop(TCPTRAIL_DROP_NO_RING);
		return NULL;
	}
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e) {
		count_drop(TCPTRAIL_DROP_RINGBUF);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	/* Stamped after the reservation: the collector's merge relies on a ring seen empty at
	 * time t never receiving a record stamped before t. */
	e->ts_ns = bpf_ktime_get_ns();
	e->kind = kind;
	e->family = family;
	return e;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_btf__inet_sock_set_state, const struct sock *sk, const int oldstate,
	     const int newstate)
{
	int family = sock_family_to_abi(sk->__sk_common.skc_family);
	struct cpu_state *cpu;
	struct tcptrail_event *e;
	__u64 age_ns;

	if (sk->sk_protocol != IPPROTO_TCP || !family_wanted(family))
		return 0;
	/* inet_csk_clone_lock() fires this for a new server child before it has set the child's
	 * ports, addresses and cookie (they are still the listener's). The child is reported from
	 * its next transition on, which comes in the same softirq unless it is a fast-open one. */
	cpu = this_cpu_state();
	if (oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV) {
		if (cpu) {
			cpu->child_sk = (__u64)sk;
			cpu->child_ts_ns = bpf_ktime_get_ns();
		}
		return 0;
	}

	e = reserve(family, TCPTRAIL_EV_STATE);
	if (!e)
		return 0;
	e->old_state = oldstate;
	e->new_state = newstate;
	if (oldstate == TCP_SYN_RECV && cpu && cpu->child_sk == (__u64)sk) {
		age_ns = e->ts_ns - cpu->child_ts_ns;
		e->detail = age_ns <= 0xffffffff ? age_ns : 0;
		cpu->child_sk = 0;
	}
	/* Only system calls enter these states, so the task on-CPU is the owner: connect(),
	 * listen(), and close()/shutdown() (which may come from another process than the one
	 * that opened the socket, e.g. a worker that inherited the descriptor). */
	if (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN || newstate == TCP_FIN_WAIT1 ||
	    newstate == TCP_LAST_ACK)
		set_owner_current(e);
	fill_tuple(e, &sk->__sk_common);
	fill_full_sock(e, sk);
	/* The states a leak is reported from: its owners are found by this inode. */
	if (newstate == TCP_CLOSE_WAIT || newstate == TCP_FIN_WAIT2)
		fill_inode(e, sk);
	e->sock_cookie = socket_cookie(sk);
	submit(e, cpu);
	return 0;
}

/* Events on an existing full socket: retransmits, resets, errors. */
static __always_inline int emit_sock_event(const struct sock *sk, __u8 kind, __u32 detail)
{
	int family = sock_family_to_abi(sk->__sk_common.skc_family);
	__u8 state = sk->__sk_common.skc_state;
	struct tcptrail_event *e;

	/* Request and timewait sockets are not full sockets. */
	if (state == TCP_NEW_SYN_RECV || state == TCP_TIME_WAIT || !family_wanted(family))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;

	e = reserve(family, kind);
	if (!e)
		return 0;
	e->old_state = state;
	e->new_state = state;
	e->detail = detail;
	fill_tuple(e, &sk->__sk_common);
	fill_full_sock(e, sk);
	e->sock_cookie = socket_cookie(sk);
	submit(e, this_cpu_state());
	return 0;
}

static __always_inline int emit_retransmit(const struct sock *sk, const struct sk_buff *skb)
{
	const struct tcp_skb_cb *cb = (const struct tcp_skb_cb *)skb->cb;
	__u16 segs = BPF_CORE_READ(cb, tcp_gso_segs);

	return emit_sock_event(sk, TCPTRAIL_EV_RETRANSMIT, segs ? segs : 1);
}

/* Before Linux 6.x the tracepoint fired only for retransmits that went out. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp_btf__tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	return emit_retransmit(sk, skb);
}

/* Since "tcp: add the error code to the tcp_retransmit_skb tracepoint" it also fires for
 * failed attempts, which the kernel does not count in total_retrans: skip those. The loader
 * picks this variant when the tracepoint's BTF prototype has the err argument. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp_btf__tcp_retransmit_skb_err, const struct sock *sk, const struct sk_buff *skb,
	     int err)
{
	if (err)
		return 0;
	return emit_retransmit(sk, skb);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tp_btf__tcp_send_reset, const struct sock *sk)
{
	/* sk is NULL when answering a segment no socket wants (e.g. a refused SYN). */
	if (!sk)
		return 0;
	return emit_sock_event(sk, TCPTRAIL_EV_RESET_SENT, 0);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tp_btf__tcp_receive_reset, const struct sock *sk)
{
	return emit_sock_event(sk, TCPTRAIL_EV_RESET_RECEIVED, 0);
}

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(tp_btf__inet_sk_error_report, const struct sock *sk)
{
	return emit_sock_event(sk, TCPTRAIL_EV_ERROR, sk->sk_err);
}

/* A SYN-ACK retransmitted for a request socket, before any child exists. The child inherits
 * the request socket's cookie (inet_csk_clone_lock copies ir_cookie), so generating it here
 * ties these retransmits to the connection that follows. */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tp_btf__tcp_retransmit_synack, const struct sock *listener,
	     const struct request_sock *req)
{
	int family = sock_family_to_abi(req->__req_common.skc_family);
	struct tcptrail_event *e;

	if (!family_wanted(family))
		return 0;
	e = reserve(family, TCPTRAIL_EV_SYNACK_RETRANSMIT);
	if (!e)
		return 0;
	e->old_state = TCP_SYN_RECV;
	e->new_state = TCP_SYN_RECV;
	e->detail = 1;
	fill_tuple(e, &req->__req_common);
	e->total_retrans = req->num_retrans;
	e->sock_cookie = bpf_get_socket_cookie((void *)req);
	submit(e, this_cpu_state());
	return 0;
}
