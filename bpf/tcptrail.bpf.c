// SPDX-License-Identifier: GPL-2.0
/* TCP lifecycle tracing. Each socket's lifecycle is folded here, in the `conns` map keyed by
 * its cookie (include/tcptrail/fold.h says how): its owner, path, time per state and the
 * counters its record needs. When it reaches CLOSE one record carries the whole connection.
 * Only the events that explain how a connection suffered or died (retransmits, resets,
 * errors) travel on their own, and every state change only when --transitions asks for it.
 *
 * A socket is named by its cookie, which the kernel never reuses and sock_diag reports too.
 * A hash map rather than socket storage: the measured cost of socket storage (a kernel
 * allocation and an RCU free per socket) was ~14% of a connection storm, a hash ~2%. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "tcptrail/events.h"
#include "tcptrail/fold.h"
#include "sock.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set through the skeleton's rodata before load. */
const volatile __u8 target_family = 0;     /* 0: both, 4 or 6 */
const volatile __u32 wakeup_events = 2048; /* wake the collector once per this many, per CPU */
const volatile __u8 emit_transitions = 0;  /* a record per state change (--transitions) */

/* The last conn_id given out; the collector takes ids from it too, through the mmapped bss,
 * for the sockets it seeds. */
__u64 last_conn_id = 0;

/* Set by the collector once it has made every CPU send its stage (raw_tp__flush_staged):
 * until then, and on a kernel where it cannot, connection records travel one by one. */
__u8 stage_connections = 0;

/* Set by the collector as it drains at the end: records no longer wait in `held`, since nothing
 * would take them out any more. */
__u8 draining = 0;

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

/* Live lifecycles by socket cookie. Bounded (the loader sets max_entries from
 * --max-connections); an entry goes when its socket is destroyed. Not preallocated: the
 * bound is for a busy host, and most hosts hold far fewer. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, __u64);
	__type(value, struct tcptrail_conn);
} conns SEC(".maps");

/* Owners of listening sockets by (netns inode << 16 | port): server children are born in
 * softirq, where nothing tells who will accept them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tcptrail_listener);
} listeners SEC(".maps");

/* The records of server children the kernel closed (a reset, an error) while a process held
 * them before reading or writing them: a pre-fork worker that accepted one and had not got to
 * it, or one still in the accept queue. Each waits here, with the reset that closed it, for its
 * holder's close() (tcp_destroy_sock, in that system call), which names the owner; the
 * collector sends what waits longer than a second, and all at exit, as they are. Taken out by
 * whoever deletes the entry, so each goes once. When full, records go at once, naming the
 * listener's owner. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct tcptrail_held);
} held SEC(".maps");

/* An entry's initial value (bpf_map_update_elem() takes a whole value, too big for the stack). */
const volatile struct tcptrail_held empty_held = {};

/* A set of network namespaces, by inode. */
struct netns_set {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
};

/* Network namespaces already announced to the collector (which sweeps them). */
struct netns_set netns_seen SEC(".maps");

/* Namespaces where a socket entered a leak state (CLOSE_WAIT, FIN_WAIT2) or a request socket
 * retransmitted its SYN-ACK since the collector last took them: the sweeps walk these at once
 * and quiet ones less often, since each walk reads the established hash that all namespaces
 * share. The collector takes the keys, then bumps active_gen. */
struct netns_set netns_active SEC(".maps");

__u32 active_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCPTRAIL_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Per-CPU scratch. child_sk/child_ts_ns: the last server child created on this CPU, by address
 * (a key here, never sent); its first reported transition follows in the same softirq and carries
 * how long ago it was created. unwoken: records submitted since this CPU last woke the
 * collector. last_netns: the namespace this CPU last announced or found announced.
 * active_netns/active_gen: the namespace this CPU last put in netns_active, and when.
 * staged/staging: connection records waiting to travel together (stage_connection). Programs
 * nest on one CPU (a softirq interrupts a system call; the collector's flush runs in an IPI):
 * staging is set while one of them changes staged, and the others then leave it alone. */
struct cpu_state {
	__u64 child_sk;
	__u64 child_ts_ns;
	__u32 unwoken;
	__u32 last_netns;
	__u32 active_netns;
	__u32 active_gen;
	__u32 staging;
	__u32 staged;
	struct tcptrail_conn_record staged_records[TCPTRAIL_BATCH_MAX];
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

static __always_inline bool family_wanted(int family)
{
	return family && (!target_family || target_family == family);
}

static __always_inline __u64 listener_key(__u32 netns_ino, __u16 port)
{
	return ((__u64)netns_ino << 16) | port;
}

static __always_inline void submit(void *record, struct cpu_state *cpu)
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
	bpf_ringbuf_submit(record, flags);
}

static __always_inline void count_drops(__u32 index, __u32 n)
{
	__u64 *count = bpf_map_lookup_elem(&drops, &index);

	if (count)
		*count += n;
}

static __always_inline void set_header(struct tcptrail_header *hdr, __u64 ts_ns, __u8 kind,
				       int family)
{
	hdr->ts_ns = ts_ns;
	hdr->kind = kind;
	hdr->family = family;
	__builtin_memset(hdr->reserved, 0, sizeof(hdr->reserved));
}

/* A compiler barrier: a nested program must see `staging` set before staged changes. */
#define staging_barrier() asm volatile("" ::: "memory")

/* A record of `size` bytes whose header is set (the rest is not cleared); `lost` records are
 * counted under lost_as when it cannot be had. */
static __always_inline void *ring_reserve(__u64 size, int family, __u8 kind, __u32 lost_as,
					  __u32 lost)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct tcptrail_header *hdr;
	void *ring;

	/* The program cannot migrate while it runs, so this CPU's ring is its own until submit. */
	ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		count_drops(TCPTRAIL_DROP_NO_RING, lost);
		return NULL;
	}
	hdr = bpf_ringbuf_reserve(ring, size, 0);
	if (!hdr) {
		count_drops(lost_as, lost);
		return NULL;
	}
	/* Stamped after the reservation: the collector's merge relies on a ring seen empty at
	 * time t never receiving a record stamped before t. */
	set_header(hdr, bpf_ktime_get_ns(), kind, family);
	return hdr;
}

/* Sends this CPU's staged connection records as one batch, unless a program it interrupted is
 * staging (that one sends them). */
static __always_inline void flush_staged(struct cpu_state *cpu)
{
	struct tcptrail_conn_batch *b;
	__u32 count, size;

	if (!cpu || cpu->staging || !cpu->staged)
		return;
	cpu->staging = 1;
	staging_barrier();
	count = cpu->staged;
	if (count > TCPTRAIL_BATCH_MAX)
		count = TCPTRAIL_BATCH_MAX;
	b = ring_reserve(sizeof(*b), 0, TCPTRAIL_EV_CONNECTION_BATCH, TCPTRAIL_DROP_CONNECTION,
			 count);
	if (b) {
		b->count = count;
		b->reserved = 0;
		/* Bounded again next to the call: older verifiers (6.1) lose the bound of count
		 * across the spill around ring_reserve, and the compiler would drop a plain
		 * second check. */
		size = count * sizeof(b->records[0]);
		barrier_var(size);
		if (size > sizeof(b->records))
			size = sizeof(b->records);
		bpf_probe_read_kernel(b->records, size, cpu->staged_records);
		submit(b, cpu);
	}
	cpu->staged = 0;
	staging_barrier();
	cpu->staging = 0;
}

/* A record as ring_reserve gives it. Whatever this CPU staged goes first, so that the records
 * of one CPU keep their order (the RST that follows a connection's CLOSE comes after its
 * record). */
static __always_inline void *reserve(__u64 size, int family, __u8 kind, __u32 lost_as,
				     struct cpu_state *cpu)
{
	flush_staged(cpu);
	return ring_reserve(size, family, kind, lost_as, 1);
}

static __always_inline struct tcptrail_event *reserve_event(int family, __u8 kind,
							    struct cpu_state *cpu)
{
	struct tcptrail_event *e = reserve(sizeof(*e), family, kind, TCPTRAIL_DROP_RINGBUF, cpu);

	if (e)
		__builtin_memset(&e->sk, 0, sizeof(*e) - sizeof(e->hdr));
	return e;
}

/* Tells the collector of a namespace the first time a socket is born or listens there. */
static __always_inline void note_netns(__u32 netns_ino, int family, struct cpu_state *cpu)
{
	struct tcptrail_event *e;
	__u8 one = 1;

	if (cpu && cpu->last_netns == netns_ino)
		return;
	if (cpu)
		cpu->last_netns = netns_ino;
	if (bpf_map_lookup_elem(&netns_seen, &netns_ino))
		return;
	/* A full map announces again; the collector keeps each namespace once. */
	bpf_map_update_elem(&netns_seen, &netns_ino, &one, BPF_NOEXIST);
	e = reserve_event(family, TCPTRAIL_EV_NETNS, cpu);
	if (!e)
		return;
	e->sk.netns_ino = netns_ino;
	submit(e, cpu);
}

/* Puts the namespace in netns_active, once per take on each CPU however busy it is. An entry
 * put after the collector read the keys waits for the next take, which comes after this. */
static __always_inline void note_active(__u32 netns_ino, struct cpu_state *cpu)
{
	__u32 gen = active_gen;
	__u8 one = 1;

	if (cpu && cpu->active_netns == netns_ino && cpu->active_gen == gen)
		return;
	if (cpu) {
		cpu->active_netns = netns_ino;
		cpu->active_gen = gen;
	}
	bpf_map_update_elem(&netns_active, &netns_ino, &one, BPF_ANY);
}

/* `task` as the owner, named in its system call. Plain loads through the trusted task pointer:
 * bpf_get_current_comm() copies with strscpy_pad() and cost more than the rest of the owner.
 * The kernel keeps comm NUL-padded, so 16 bytes copy it whole. */
static __always_inline void set_owner(__u32 *pid, __u8 *source, char *comm,
				      struct task_struct *task)
{
	*pid = task->tgid;
	*source = TCPTRAIL_OWNER_SYSCALL;
	__builtin_memcpy(comm, task->comm, TCPTRAIL_COMM_LEN);
}

/* The task on-CPU as the owner. */
static __always_inline void set_owner_current(struct tcptrail_conn *c)
{
	set_owner(&c->owner_pid, &c->owner_source, c->owner_comm, bpf_get_current_task_btf());
}

static __always_inline void on_listener(const struct sock *sk, int newstate,
					struct cpu_state *cpu, int family)
{
	__u32 netns_ino = sk->__sk_common.skc_net.net->ns.inum;
	__u64 key = listener_key(netns_ino, sk->__sk_common.skc_num);
	struct task_struct *task;
	struct tcptrail_listener owner;

	if (newstate != TCP_LISTEN) {
		bpf_map_delete_elem(&listeners, &key);
		return;
	}
	task = bpf_get_current_task_btf();
	owner.pid = task->tgid;
	__builtin_memcpy(owner.comm, task->comm, sizeof(owner.comm));
	bpf_map_update_elem(&listeners, &key, &owner, BPF_ANY);
	note_netns(netns_ino, family, cpu);
}

/* Starts a lifecycle (see tcptrail_admit) in `old`'s place, or in a new entry. Returns the
 * entry, or NULL when the map is full. *child_age_ns: how long ago a child was created.
 * total_retrans: the socket's count before this lifecycle. */
static __always_inline struct tcptrail_conn *
begin_conn(const struct sock *sk, __u64 cookie, struct tcptrail_conn *old, int admit, int keep_id,
	   __u8 old_state, struct cpu_state *cpu, __u64 now, int family, __u32 total_retrans,
	   __u64 *child_age_ns)
{
	struct tcptrail_conn fresh = {};
	struct tcptrail_listener *listener;
	__u64 key;

	*child_age_ns = 0;
	if (admit == TCPTRAIL_ADMIT_CHILD && cpu && cpu->child_sk == (__u64)sk) {
		*child_age_ns = now - cpu->child_ts_ns;
		cpu->child_sk = 0;
	}
	tcptrail_begin(&fresh, admit,
		       keep_id && old ? old->conn_id : __sync_add_and_fetch(&last_conn_id, 1), now,
		       old_state, *child_age_ns, total_retrans);
	if (admit == TCPTRAIL_ADMIT_CHILD) {
		key = listener_key(sk->__sk_common.skc_net.net->ns.inum, sk->__sk_common.skc_num);
		listener = bpf_map_lookup_elem(&listeners, &key);
		if (listener) {
			fresh.owner_pid = listener->pid;
			fresh.owner_source = TCPTRAIL_OWNER_LISTENER;
			__builtin_memcpy(fresh.owner_comm, listener->comm, sizeof(fresh.owner_comm));
		}
	}
	if (old) {
		*old = fresh;
		return old;
	}
	if (bpf_map_update_elem(&conns, &cookie, &fresh, BPF_NOEXIST) != 0) {
		/* Sockets, not events: one turned away at birth is counted once. */
		if (admit != TCPTRAIL_ADMIT_PREEXISTING)
			count_drops(TCPTRAIL_DROP_TABLE_FULL, 1);
		return NULL;
	}
	if (admit != TCPTRAIL_ADMIT_PREEXISTING)
		note_netns(sk->__sk_common.skc_net.net->ns.inum, family, cpu);
	return bpf_map_lookup_elem(&conns, &cookie);
}

static __always_inline void copy_lifecycle(struct tcptrail_event *e, const struct tcptrail_conn *c)
{
	e->conn_id = c->conn_id;
	e->owner_pid = c->owner_pid;
	e->owner_source = c->owner_source;
	e->role = c->role;
	e->conn_flags = c->flags;
	__builtin_memcpy(e->owner_comm, c->owner_comm, sizeof(e->owner_comm));
}

static __always_inline void fill_conn_record(struct tcptrail_conn_record *r, const struct sock *sk,
					     __u64 cookie, const struct tcptrail_conn *c, int family)
{
	__builtin_memset(&r->sk, 0, sizeof(r->sk));
	fill_sock(&r->sk, family, sk, cookie);
	r->conn = *c;
}

/* The connection's record, sent when it reaches CLOSE (or is destroyed without). */
static __always_inline void emit_connection(const struct sock *sk, __u64 cookie,
					    const struct tcptrail_conn *c, int family,
					    struct cpu_state *cpu)
{
	struct tcptrail_conn_record *r;

	r = reserve(sizeof(*r), family, TCPTRAIL_EV_CONNECTION, TCPTRAIL_DROP_CONNECTION, cpu);
	if (!r)
		return;
	fill_conn_record(r, sk, cookie, c, family);
	submit(r, cpu);
}

/* A connection closed in order (the states after a FIN): nothing the kernel does to the socket
 * afterwards belongs to its record, so the record may wait on this CPU for others to travel
 * with. Returns false when it must go at once (another program on this CPU is staging). */
static __always_inline bool stage_connection(const struct sock *sk, __u64 cookie,
					     const struct tcptrail_conn *c, int family,
					     struct cpu_state *cpu, __u64 now)
{
	struct tcptrail_conn_record *r;
	__u32 slot;
	bool full;

	if (!stage_connections || !cpu || cpu->staging)
		return false;
	cpu->staging = 1;
	staging_barrier();
	slot = cpu->staged;
	if (slot >= TCPTRAIL_BATCH_MAX) {
		/* Not reached: a full stage is sent at once. */
		staging_barrier();
		cpu->staging = 0;
		return false;
	}
	r = &cpu->staged_records[slot];
	set_header(&r->hdr, now, TCPTRAIL_EV_CONNECTION, family);
	fill_conn_record(r, sk, cookie, c, family);
	cpu->staged = slot + 1;
	full = slot + 1 == TCPTRAIL_BATCH_MAX;
	staging_barrier();
	cpu->staging = 0;
	if (full)
		flush_staged(cpu);
	return true;
}

/* A server child no process has read or written yet (its owner is still the listener's), reset
 * or closed in `state` while no close() has released it (SOCK_DEAD): a worker accepted it and
 * had not got to it, or it is still in the accept queue, where a health check's reset often
 * finds it and whence the worker that accepts it and closes it releases it (or a listener's
 * close() does). Not one in SYN_RECV: those may be closed and destroyed in softirq
 * (inet_child_forget() when the accept queue is gone); a fast-open child's holder only goes
 * unnamed. */
static __always_inline bool unclaimed_and_held(const struct sock *sk, const struct tcptrail_conn *c,
					       __u8 state)
{
	return c->owner_source == TCPTRAIL_OWNER_LISTENER && state != TCP_SYN_RECV &&
	       !(sk->__sk_common.skc_flags & (1UL << SOCK_DEAD));
}

/* The socket's entry in `held`, made if need be; NULL when the map is full, at the end, or with
 * --transitions, whose state records go at once and would come before what waits. */
static __always_inline struct tcptrail_held *held_entry(__u64 cookie, struct tcptrail_conn *c)
{
	struct tcptrail_held *h;

	if (draining || emit_transitions)
		return NULL;
	if (!c->record_held &&
	    bpf_map_update_elem(&held, &cookie, (const void *)&empty_held, BPF_NOEXIST))
		return NULL;
	h = bpf_map_lookup_elem(&held, &cookie);
	if (h)
		c->record_held = 1;
	return h;
}

/* Keeps the record of a socket closed as unclaimed_and_held() says in `held` until its holder
 * closes it (release_held). False when it must go now. */
static __always_inline bool hold_record(const struct sock *sk, __u64 cookie,
					struct tcptrail_conn *c, int family, __u64 now)
{
	struct tcptrail_held *h = held_entry(cookie, c);

	if (!h || h->record.hdr.kind)
		return false;
	fill_conn_record(&h->record, sk, cookie, c, family);
	/* Stamped last: the collector takes a part whose header has a kind as complete. */
	staging_barrier();
	set_header(&h->record.hdr, now, TCPTRAIL_EV_CONNECTION, family);
	return true;
}

#define PF_KTHREAD 0x00200000

/* The held record, as the holder's close() sends it. */
static __always_inline void fill_released_record(struct tcptrail_conn_record *out,
						 const struct tcptrail_held *h,
						 struct task_struct *task, bool named)
{
	out->sk = h->record.sk;
	out->conn = h->record.conn;
	if (named)
		set_owner(&out->conn.owner_pid, &out->conn.owner_source, out->conn.owner_comm,
			   task);
}

/* The held reset, as the holder's close() sends it. */
static __always_inline void fill_released_reset(struct tcptrail_event *out,
						const struct tcptrail_held *h,
						struct task_struct *task, bool named, __u64 now)
{
	__u64 waited = now - h->reset.hdr.ts_ns;

	__builtin_memcpy((void *)out + sizeof(out->hdr), (const void *)&h->reset + sizeof(h->reset.hdr),
			 sizeof(*out) - sizeof(out->hdr));
	out->detail = waited <= 0xffffffff ? waited : 0;
	if (named)
		set_owner(&out->owner_pid, &out->owner_source, out->owner_comm, task);
}

/* Sends what `held` keeps for the socket, named after the task whose close() destroys it: it
 * held the socket (unclaimed_and_held() means no softirq destroys it). Not a kernel thread's,
 * which only drops a file's last reference for someone (delayed_fput()). What cannot be
 * reserved here is not lost: the collector finds it in `held`. The two cases are written apart:
 * older verifiers (6.1) do not know a reservation checked once is not NULL, and would follow a
 * second check of it into a path that leaks it. */
static __always_inline void release_held(__u64 cookie, __u64 now, struct cpu_state *cpu)
{
	struct task_struct *task = bpf_get_current_task_btf();
	bool named = !(task->flags & PF_KTHREAD);
	struct tcptrail_conn_record *out;
	struct tcptrail_event *reset;
	struct tcptrail_held *h;

	h = bpf_map_lookup_elem(&held, &cookie);
	if (!h || !h->record.hdr.kind)
		return; /* the collector sent it (or left the reset alone, then it does) */
	flush_staged(cpu);
	if (!h->reset.hdr.kind) {
		out = ring_reserve(sizeof(*out), h->record.hdr.family, TCPTRAIL_EV_CONNECTION, 0, 0);
		if (!out)
			return;
		fill_released_record(out, h, task, named);
		if (bpf_map_delete_elem(&held, &cookie)) {
			bpf_ringbuf_discard(out, BPF_RB_NO_WAKEUP); /* the collector took it */
			return;
		}
		submit(out, cpu);
		return;
	}
	reset = ring_reserve(sizeof(*reset), h->reset.hdr.family, TCPTRAIL_EV_RESET_RECEIVED, 0, 0);
	if (!reset)
		return;
	out = ring_reserve(sizeof(*out), h->record.hdr.family, TCPTRAIL_EV_CONNECTION, 0, 0);
	if (!out) {
		bpf_ringbuf_discard(reset, BPF_RB_NO_WAKEUP);
		return;
	}
	fill_released_reset(reset, h, task, named, now);
	fill_released_record(out, h, task, named);
	if (bpf_map_delete_elem(&held, &cookie)) {
		bpf_ringbuf_discard(reset, BPF_RB_NO_WAKEUP);
		bpf_ringbuf_discard(out, BPF_RB_NO_WAKEUP);
		return;
	}
	submit(reset, cpu);
	submit(out, cpu);
}

static __always_inline bool closed_in_order(const struct tcptrail_conn *c)
{
	return c->closed_from == TCP_FIN_WAIT1 || c->closed_from == TCP_FIN_WAIT2 ||
	       c->closed_from == TCP_CLOSING || c->closed_from == TCP_LAST_ACK;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_btf__inet_sock_set_state, const struct sock *sk, const int oldstate,
	     const int newstate)
{
	int family = sock_family_to_abi(sk->__sk_common.skc_family);
	struct tcptrail_conn *c;
	struct cpu_state *cpu;
	struct tcptrail_event *e;
	struct tcp_sock *tp;
	__u32 total_retrans = 0, srtt_us = 0;
	__u64 cookie, now, ns_in_old, child_age_ns = 0;
	int admit, keep_id, known;

	if (sk->sk_protocol != IPPROTO_TCP || !family_wanted(family))
		return 0;
	/* inet_csk_clone_lock() fires this for a new server child before it has set the child's
	 * ports, addresses and cookie (they are still the listener's). The child is folded from
	 * its next transition on, which comes in the same softirq unless it is a fast-open one. */
	cpu = this_cpu_state();
	now = bpf_ktime_get_ns();
	if (oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV) {
		if (cpu) {
			cpu->child_sk = (__u64)sk;
			cpu->child_ts_ns = now;
		}
		return 0;
	}
	/* Listeners are not connections: they are kept only for their children's owner. */
	if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
		on_listener(sk, newstate, cpu, family);
		return 0;
	}

	cookie = socket_cookie(sk);
	c = bpf_map_lookup_elem(&conns, &cookie);
	admit = tcptrail_admit(c, oldstate, newstate, &keep_id);
	if (admit == TCPTRAIL_ADMIT_LATE)
		return 0;
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (tp) {
		total_retrans = tp->total_retrans;
		srtt_us = tp->srtt_us >> 3;
	}
	if (admit != TCPTRAIL_ADMIT_CONTINUE) {
		/* connect() again after a disconnect whose RST could not be allocated: the
		 * socket's tuple is already the new one, so the last record is counted lost. */
		if (c && (c->flags & TCPTRAIL_C_AWAITS_RESET))
			count_drops(TCPTRAIL_DROP_CONNECTION, 1);
		c = begin_conn(sk, cookie, c, admit, keep_id, oldstate, cpu, now, family,
			       total_retrans, &child_age_ns);
		if (!c)
			return 0;
	}
	if (sk->sk_err)
		c->error = sk->sk_err;
	/* Only system calls enter these states, so the task on-CPU is the owner: connect(), and
	 * close()/shutdown() (which may come from another process than the one that opened the
	 * socket, e.g. a worker that inherited the descriptor). */
	if (newstate == TCP_SYN_SENT || newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK)
		set_owner_current(c);
	/* The states a leak is reported from: its holders are found by this inode. */
	if (newstate == TCP_CLOSE_WAIT || newstate == TCP_FIN_WAIT2) {
		c->sock_ino = socket_inode(sk);
		note_active(sk->__sk_common.skc_net.net->ns.inum, cpu);
	}
	ns_in_old = tcptrail_fold_state(c, now, newstate, total_retrans, srtt_us, &known);

	if (emit_transitions) {
		e = reserve_event(family, TCPTRAIL_EV_STATE, cpu);
		if (e) {
			fill_sock(&e->sk, family, sk, cookie);
			copy_lifecycle(e, c);
			e->old_state = oldstate;
			e->new_state = newstate;
			e->ns_in_old = ns_in_old;
			if (known)
				e->sk.flags |= TCPTRAIL_F_NS_IN_OLD;
			e->detail = child_age_ns <= 0xffffffff ? child_age_ns : 0;
			submit(e, cpu);
		}
	}
	if (newstate == TCP_CLOSE) {
		/* With --transitions a state record follows at once and would send the batch. */
		if (tcptrail_close_awaits_reset(c)) {
			/* An abortive close() or a disconnect, in the holder's system call. */
			if (unclaimed_and_held(sk, c, oldstate))
				set_owner_current(c);
			c->flags |= TCPTRAIL_C_AWAITS_RESET;
		} else if ((c->record_held || unclaimed_and_held(sk, c, oldstate)) &&
			   hold_record(sk, cookie, c, family, now))
			;
		else if (emit_transitions || !closed_in_order(c) ||
			 !stage_connection(sk, cookie, c, family, cpu, now))
			emit_connection(sk, cookie, c, family, cpu);
	}
	return 0;
}

/* Run by the collector on each CPU (BPF_PROG_TEST_RUN, in an IPI) so that a CPU that went
 * quiet does not keep its staged records: ctx[0] is 0. A CPU taken offline runs nothing, so
 * the collector runs it elsewhere with ctx[0] = that CPU + 1, and it sends that CPU's stage
 * from there, where the kernel can look another CPU's up (bpf_map_lookup_percpu_elem(), since
 * 5.19: 07343110b293 "bpf: add bpf_map_lookup_percpu_elem for percpu map"). Returns 1 when it
 * cannot. */
SEC("raw_tp")
int raw_tp__flush_staged(__u64 *ctx)
{
	__u64 offline_cpu = ctx[0];
	__u32 zero = 0;

	if (!offline_cpu) {
		flush_staged(this_cpu_state());
		return 0;
	}
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_map_lookup_percpu_elem))
		return 1;
	flush_staged(bpf_map_lookup_percpu_elem(&cpu_states, &zero, offline_cpu - 1));
	return 0;
}

/* The entry is kept after CLOSE until the socket goes, so that what the kernel does to a
 * closed socket (the RST of an abortive close comes just after CLOSE) is still tied to its
 * connection. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tp_btf__tcp_destroy_sock, const struct sock *sk)
{
	/* An entry's creation generated the cookie: a socket without one has no entry. */
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	int family = sock_family_to_abi(sk->__sk_common.skc_family);
	struct tcptrail_conn *c;
	int known;

	if (!cookie)
		return 0;
	c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c)
		return 0;
	/* Destroyed without a CLOSE seen (it came before tracing did), or without the RST its
	 * record waited for: nothing is lost quietly. */
	if (!(c->flags & TCPTRAIL_C_CLOSED) && family) {
		tcptrail_fold_state(c, bpf_ktime_get_ns(), TCP_CLOSE, 0, 0, &known);
		emit_connection(sk, cookie, c, family, this_cpu_state());
	} else if ((c->flags & TCPTRAIL_C_AWAITS_RESET) && family) {
		c->flags &= ~TCPTRAIL_C_AWAITS_RESET;
		emit_connection(sk, cookie, c, family, this_cpu_state());
	} else if (c->record_held)
		release_held(cookie, bpf_ktime_get_ns(), this_cpu_state());
	bpf_map_delete_elem(&conns, &cookie);
	return 0;
}

/* A server child is owned by the process that serves it, which the listener's owner (say a
 * pre-fork server's master) is not: the first read or write of the accepted socket, in the
 * serving process's system call, names it. Also a socket older than tracing whose owner was not
 * found. */
static __always_inline int claim_owner(const struct sock *sk)
{
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	struct tcptrail_conn *c;

	if (!cookie || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	c = bpf_map_lookup_elem(&conns, &cookie);
	if (c && (c->owner_source == TCPTRAIL_OWNER_LISTENER ||
		  c->owner_source == TCPTRAIL_OWNER_UNKNOWN)) {
		set_owner_current(c);
		c->owner_source = TCPTRAIL_OWNER_ACCEPTOR;
	}
	return 0;
}

/* tcp_recvmsg() calls it in the reader's system call (since 4.16, so on every kernel tcptrail
 * runs on). */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tp_btf__tcp_rcv_space_adjust, const struct sock *sk)
{
	return claim_owner(sk);
}

/* For servers that write first (a banner, a greeting): tcp_sendmsg_locked() where the kernel
 * has that tracepoint; the loader attaches this only then. */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(tp_btf__tcp_sendmsg_locked, const struct sock *sk)
{
	return claim_owner(sk);
}

/* An event on a full socket in `state`, after its header (cleared, as reserve_event() gives it). */
static __always_inline void fill_sock_event(struct tcptrail_event *e, const struct sock *sk,
					    __u64 cookie, int family, const struct tcptrail_conn *c,
					    __u8 state, __u32 detail)
{
	e->old_state = state;
	e->new_state = state;
	e->detail = detail;
	fill_sock(&e->sk, family, sk, cookie);
	copy_lifecycle(e, c);
}

/* Keeps a reset received by a socket as unclaimed_and_held() says in `held`, where its record
 * will follow (see hold_record). False when it must go now. */
static __always_inline bool hold_reset(const struct sock *sk, __u64 cookie,
				       struct tcptrail_conn *c, int family, __u8 state)
{
	struct tcptrail_held *h = held_entry(cookie, c);
	struct tcptrail_event *e;

	if (!h || h->reset.hdr.kind || h->record.hdr.kind)
		return false;
	e = &h->reset;
	__builtin_memset(&e->sk, 0, sizeof(*e) - sizeof(e->hdr));
	fill_sock_event(e, sk, cookie, family, c, state, 0);
	staging_barrier(); /* stamped last, as in hold_record() */
	set_header(&e->hdr, bpf_ktime_get_ns(), TCPTRAIL_EV_RESET_RECEIVED, family);
	return true;
}

/* Events on an existing full socket: retransmits, resets, errors. A retransmit's detail: the
 * segments of the attempt if it went out (counted by then), 0 if it failed. */
static __always_inline int emit_sock_event(const struct sock *sk, __u8 kind, __u32 detail)
{
	int family = sock_family_to_abi(sk->__sk_common.skc_family);
	__u8 state = sk->__sk_common.skc_state;
	struct tcptrail_event *e;
	struct tcptrail_conn *c;
	struct cpu_state *cpu;
	__u64 cookie, child_age_ns;
	__u32 total_retrans = 0;
	struct tcp_sock *tp;
	int admit, keep_id;

	/* Request and timewait sockets are not full sockets. */
	if (state == TCP_NEW_SYN_RECV || state == TCP_TIME_WAIT || !family_wanted(family))
		return 0;
	if (sk->sk_protocol != IPPROTO_TCP || state == TCP_LISTEN)
		return 0;

	cpu = this_cpu_state();
	cookie = socket_cookie(sk);
	tp = bpf_skc_to_tcp_sock((void *)sk);
	if (tp)
		total_retrans = tp->total_retrans;
	c = bpf_map_lookup_elem(&conns, &cookie);
	if (!c) {
		/* A socket older than tracing that the start-up snapshot missed. */
		admit = tcptrail_admit(c, state, state, &keep_id);
		if (admit == TCPTRAIL_ADMIT_LATE)
			return 0;
		c = begin_conn(sk, cookie, NULL, admit, 0, state, cpu, bpf_ktime_get_ns(), family,
			       tcptrail_retrans_before(kind, detail, total_retrans), &child_age_ns);
		if (!c)
			return 0;
	}
	if (kind == TCPTRAIL_EV_RESET_SENT) {
		c->flags |= TCPTRAIL_C_RESET_SENT;
		/* The record comes before its reset, as it would have at CLOSE. */
		if (c->flags & TCPTRAIL_C_AWAITS_RESET) {
			c->flags &= ~TCPTRAIL_C_AWAITS_RESET;
			emit_connection(sk, cookie, c, family, cpu);
		}
	} else if (kind == TCPTRAIL_EV_RESET_RECEIVED) {
		c->flags |= TCPTRAIL_C_RESET_RECEIVED;
		/* It closes the socket next: its record and this wait for the holder together. */
		if (unclaimed_and_held(sk, c, state) && hold_reset(sk, cookie, c, family, state))
			return 0;
	}
	else if (kind == TCPTRAIL_EV_ERROR && detail && !(c->flags & TCPTRAIL_C_CLOSED))
		c->error = detail;
	else if (kind == TCPTRAIL_EV_RETRANSMIT) {
		detail = tcptrail_retransmitted(c, total_retrans);
		if (!detail)
			return 0;
	}

	e = reserve_event(family, kind, cpu);
	if (!e)
		return 0;
	fill_sock_event(e, sk, cookie, family, c, state, detail);
	submit(e, cpu);
	return 0;
}

/* What a retransmit event carries comes from total_retrans (tcptrail_retransmitted()). */
static __always_inline int emit_retransmit(const struct sock *sk, const struct sk_buff *skb,
					   int err)
{
	const struct tcp_skb_cb *cb = (const struct tcp_skb_cb *)skb->cb;
	__u16 segs = BPF_CORE_READ(cb, tcp_gso_segs);

	return emit_sock_event(sk, TCPTRAIL_EV_RETRANSMIT, err ? 0 : segs);
}

/* Before Linux 6.x the tracepoint fired only for retransmits that went out: one counted but
 * not sent is carried by the next. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp_btf__tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	return emit_retransmit(sk, skb, 0);
}

/* Since "tcp: add the error code to the tcp_retransmit_skb tracepoint" it also fires for
 * failed attempts, counted or not. The loader picks this variant when the tracepoint's BTF
 * prototype has the err argument. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp_btf__tcp_retransmit_skb_err, const struct sock *sk, const struct sk_buff *skb,
	     int err)
{
	return emit_retransmit(sk, skb, err);
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
	struct cpu_state *cpu = this_cpu_state();
	struct tcptrail_listener *owner;
	struct tcptrail_event *e;
	__u64 key;

	if (!family_wanted(family))
		return 0;
	note_active(req->__req_common.skc_net.net->ns.inum, cpu);
	e = reserve_event(family, TCPTRAIL_EV_SYNACK_RETRANSMIT, cpu);
	if (!e)
		return 0;
	e->old_state = TCP_SYN_RECV;
	e->new_state = TCP_SYN_RECV;
	e->detail = 1;
	fill_tuple(&e->sk, family, &req->__req_common);
	e->sk.total_retrans = req->num_retrans;
	e->sk.sock_cookie = bpf_get_socket_cookie((void *)req);
	e->role = TCPTRAIL_ROLE_SERVER;
	key = listener_key(e->sk.netns_ino, e->sk.sport);
	owner = bpf_map_lookup_elem(&listeners, &key);
	if (owner) {
		e->owner_pid = owner->pid;
		e->owner_source = TCPTRAIL_OWNER_LISTENER;
		__builtin_memcpy(e->owner_comm, owner->comm, sizeof(e->owner_comm));
	}
	submit(e, cpu);
	return 0;
}
