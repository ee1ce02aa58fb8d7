/* The one ABI between the BPF programs and the collector: records that travel through the
 * per-CPU ring buffers (`rings`) and the values of the maps the collector reads and seeds.
 * C only (included by BPF C and C++); fixed-width fields, no pointers, no enum-typed fields,
 * explicit padding. Both sides are built from this header into one binary (the skeleton embeds the
 * programs), so they cannot disagree; the static_asserts below keep the sizes honest. */
#ifndef TCPTRAIL_EVENTS_H
#define TCPTRAIL_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TCPTRAIL_COMM_LEN 16

/* Record kinds: the byte after the timestamp of every ring record. */
#define TCPTRAIL_EV_STATE 1             /* a state change; only with --transitions */
#define TCPTRAIL_EV_RETRANSMIT 2        /* tcp:tcp_retransmit_skb (detail = segments counted since
                                         * the last one, tcptrail_retransmitted()) */
#define TCPTRAIL_EV_SYNACK_RETRANSMIT 3 /* tcp:tcp_retransmit_synack on a request socket */
#define TCPTRAIL_EV_RESET_SENT 4        /* tcp:tcp_send_reset on a full socket */
#define TCPTRAIL_EV_RESET_RECEIVED 5    /* tcp:tcp_receive_reset */
#define TCPTRAIL_EV_ERROR 6             /* sock:inet_sk_error_report (detail = errno) */
#define TCPTRAIL_EV_NETNS 7             /* a network namespace's first birth or listener */
#define TCPTRAIL_EV_CONNECTION 8        /* a connection reached CLOSE: struct tcptrail_conn_record */
#define TCPTRAIL_EV_CONNECTION_BATCH 9  /* connections that closed in order: struct tcptrail_conn_batch */

/* owner_source: how owner_pid/owner_comm were learned */
#define TCPTRAIL_OWNER_UNKNOWN 0  /* pid is 0 */
#define TCPTRAIL_OWNER_SYSCALL 1  /* the task that called connect()/listen()/close()/shutdown() */
#define TCPTRAIL_OWNER_LISTENER 2 /* server child: the owner of its listening socket */
#define TCPTRAIL_OWNER_FD_SCAN 3  /* a process found holding its descriptor in /proc/PID/fd */
#define TCPTRAIL_OWNER_ACCEPTOR 4 /* server child: the process whose system call first read or
                                   * wrote it, after accept() */

/* role */
#define TCPTRAIL_ROLE_UNKNOWN 0
#define TCPTRAIL_ROLE_CLIENT 1
#define TCPTRAIL_ROLE_SERVER 2

/* tcptrail_event.flags and tcptrail_conn_record.sock_flags: the socket at the event */
#define TCPTRAIL_F_ORPHAN 0x04       /* no process holds the socket (SOCK_DEAD) */
#define TCPTRAIL_F_NS_IN_OLD 0x08    /* state records: ns_in_old is known */
#define TCPTRAIL_F_FIN_ACKED 0x10    /* send side shut down, snd_una at write_seq: our FIN was acked
                                      * if one was sent (an abort sends none; see decode.cpp) */
#define TCPTRAIL_F_FIN_RECEIVED 0x20 /* the peer's FIN came (SOCK_DONE): bytes_received counts it */

/* tcptrail_conn.flags: what the lifecycle so far has shown */
#define TCPTRAIL_C_PREEXISTING 0x01  /* first seen mid-life: it existed before tracing */
#define TCPTRAIL_C_RESET_SENT 0x02
#define TCPTRAIL_C_RESET_RECEIVED 0x04
#define TCPTRAIL_C_HANDSHAKE 0x08    /* handshake_us is valid */
#define TCPTRAIL_C_ESTABLISHED 0x10  /* reached ESTABLISHED at least once */
#define TCPTRAIL_C_FIRST_TIMED 0x20  /* the time spent in path[0] is known */
#define TCPTRAIL_C_CLOSED 0x40       /* reached CLOSE; its record is sent (or awaited) */
#define TCPTRAIL_C_AWAITS_RESET 0x80 /* closed, its record waits for the RST (tcptrail_close_awaits_reset) */

#define TCPTRAIL_PATH_MAX 14
#define TCPTRAIL_PATH_TRUNCATED 0x80 /* in path_len: more states came than fit */
#define TCPTRAIL_TIMED_STATES 8      /* SYN_SENT SYN_RECV ESTABLISHED FIN_WAIT1 FIN_WAIT2
                                      * CLOSE_WAIT LAST_ACK CLOSING, in this order */

/* One socket's lifecycle as folded in the kernel: the value of the `conns` map, keyed by the
 * socket cookie. The collector seeds it for sockets found at start and reads it for leaks. */
struct tcptrail_conn {
	__u64 conn_id;        /* from last_conn_id, shared with the collector; never 0 */
	__u64 first_ns;       /* birth (or first sight), bpf_ktime_get_ns() */
	__u64 state_since_ns; /* when it entered `state` */
	__u64 end_ns;         /* when it reached CLOSE; 0 while live */
	__u64 state_ns[TCPTRAIL_TIMED_STATES]; /* time spent in each timed state */
	__u32 owner_pid;      /* tgid, 0 if unknown */
	__u32 sock_ino;       /* socket file inode, learned entering CLOSE_WAIT or FIN_WAIT2 */
	__u32 handshake_us;
	__u32 syn_retransmits;    /* total_retrans when it left SYN_SENT */
	__u32 synack_retransmits; /* the request socket's, when the child was established */
	__u16 error;          /* the last errno the socket reported, 0 if none */
	__u8 state;           /* TCP_* now */
	__u8 closed_from;     /* the state it left for CLOSE */
	__u8 role;            /* TCPTRAIL_ROLE_* */
	__u8 owner_source;    /* TCPTRAIL_OWNER_* */
	__u8 flags;           /* TCPTRAIL_C_* */
	__u8 path_len;        /* states in path, | TCPTRAIL_PATH_TRUNCATED */
	__u8 path[TCPTRAIL_PATH_MAX]; /* the states it went through, in order */
	char owner_comm[TCPTRAIL_COMM_LEN]; /* not NUL-terminated if 16 bytes */
	__u8 record_held;     /* its reset or record waits in the `held` map for the holder's close() */
	__u8 reserved;
	__u32 retrans_reported; /* total_retrans as of its last retransmit event (or its admission) */
};

/* Every ring record starts with this: the collector merges the rings by ts_ns. */
struct tcptrail_header {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, ns */
	__u8 kind;   /* TCPTRAIL_EV_* */
	__u8 family; /* 4 or 6 */
	__u8 reserved[6];
};

/* The socket as the event or the CLOSE found it. */
struct tcptrail_sock {
	__u64 sock_cookie;    /* bpf_get_socket_cookie(): the socket's identity, never reused */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked, bytes (tcpi_bytes_acked) */
	__u64 bytes_received; /* tcp_sock.bytes_received, bytes (tcpi_bytes_received) */
	__u64 cgroup_id;      /* cgroup v2 id of the socket (its creator's cgroup), 0 if none */
	__u32 total_retrans;  /* tcp_sock.total_retrans, segments (tcpi_total_retrans) */
	__u32 srtt_us;        /* tcp_sock.srtt_us >> 3, microseconds */
	__u32 netns_ino;      /* inode number of the socket's network namespace */
	__u16 sport;          /* local port, host byte order */
	__u16 dport;          /* remote port, host byte order */
	__u8 saddr[16];       /* local address, network byte order; IPv4 in the first 4 bytes */
	__u8 daddr[16];       /* remote address, network byte order; IPv4 in the first 4 bytes */
	__u16 sk_err;         /* sk->sk_err: errno the socket will report, 0 if none */
	__u8 flags;           /* TCPTRAIL_F_* */
	__u8 reserved[5];
};

/* Events on a socket while it lives (and the state changes --transitions asks for). The owner,
 * role and conn_id are the lifecycle's, from the `conns` map (0 when it has no entry). */
struct tcptrail_event {
	struct tcptrail_header hdr;
	struct tcptrail_sock sk;
	__u64 conn_id;
	__u64 ns_in_old;      /* state records: time spent in old_state (TCPTRAIL_F_NS_IN_OLD) */
	__u32 owner_pid;
	__u32 detail;         /* kind-specific: segments (retransmits), errno (errors); for a
	                       * server child's first state change, ns since it was created in
	                       * SYN_RECV (0: not known); for a reset received that waited in
	                       * `held`, ns it waited (ts_ns is when it was sent) */
	__u8 old_state;       /* TCP_* state before the change (state at the event for other kinds) */
	__u8 new_state;       /* TCP_* state after the change (equal to old_state for other kinds) */
	__u8 owner_source;    /* TCPTRAIL_OWNER_* */
	__u8 role;            /* TCPTRAIL_ROLE_* */
	__u8 conn_flags;      /* TCPTRAIL_C_* of the lifecycle */
	__u8 reserved[3];
	char owner_comm[TCPTRAIL_COMM_LEN];
};

/* A finished connection: the socket at CLOSE and its whole folded lifecycle. */
struct tcptrail_conn_record {
	struct tcptrail_header hdr;
	struct tcptrail_sock sk;
	struct tcptrail_conn conn;
};

#define TCPTRAIL_EVENT_SIZE 152
#define TCPTRAIL_CONN_RECORD_SIZE 264

/* Connection records of one CPU, staged in the kernel and sent together: a ring reservation
 * costs more than the rest of a connection's tracing. hdr.ts_ns is when the batch was sent and
 * hdr.family is 0; each record keeps its own header, stamped at its CLOSE. Only `count` records
 * are meaningful; the rest of the reservation is not cleared. */
#define TCPTRAIL_BATCH_MAX 8
struct tcptrail_conn_batch {
	struct tcptrail_header hdr;
	__u32 count; /* 1..TCPTRAIL_BATCH_MAX */
	__u32 reserved;
	struct tcptrail_conn_record records[TCPTRAIL_BATCH_MAX];
};

#define TCPTRAIL_CONN_BATCH_SIZE (24 + TCPTRAIL_BATCH_MAX * TCPTRAIL_CONN_RECORD_SIZE)

/* The value of the `held` map, keyed by socket cookie (see tcptrail.bpf.c): the record of a
 * connection that waits for its holder's close(), and before it the reset that closed it. A part
 * whose hdr.kind is 0 is not there (yet). */
struct tcptrail_held {
	struct tcptrail_event reset;
	struct tcptrail_conn_record record;
};

/* The value of the `listeners` map, keyed by (netns inode << 16) | port: who listens there.
 * The collector seeds the listeners that existed before tracing. */
struct tcptrail_listener {
	__u32 pid;
	char comm[TCPTRAIL_COMM_LEN];
};

/* Indexes of the per-CPU `drops` counters. */
#define TCPTRAIL_DROP_RINGBUF 0     /* an event's reservation failed: the event is lost */
#define TCPTRAIL_DROP_NO_RING 1     /* the CPU has no ring: it came online after the start */
#define TCPTRAIL_DROP_CONNECTION 2  /* a connection record's reservation failed (per record) */
#define TCPTRAIL_DROP_TABLE_FULL 3  /* a socket born while `conns` was full: not traced */
#define TCPTRAIL_DROP_MAX 4

#ifdef __cplusplus
static_assert(sizeof(struct tcptrail_sock) == 88, "ABI size");
static_assert(sizeof(struct tcptrail_conn) == 160, "ABI size");
static_assert(sizeof(struct tcptrail_event) == TCPTRAIL_EVENT_SIZE, "ABI size");
static_assert(sizeof(struct tcptrail_conn_record) == TCPTRAIL_CONN_RECORD_SIZE, "ABI size");
static_assert(sizeof(struct tcptrail_conn_batch) == TCPTRAIL_CONN_BATCH_SIZE, "ABI size");
#else
_Static_assert(sizeof(struct tcptrail_event) == TCPTRAIL_EVENT_SIZE, "ABI size");
_Static_assert(sizeof(struct tcptrail_conn_record) == TCPTRAIL_CONN_RECORD_SIZE, "ABI size");
_Static_assert(sizeof(struct tcptrail_conn_batch) == TCPTRAIL_CONN_BATCH_SIZE, "ABI size");
#endif

#endif /* TCPTRAIL_EVENTS_H */
