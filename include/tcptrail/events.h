/* The one ABI between the BPF programs and the collector: records that travel through the
 * per-CPU ring buffers (`rings`). C only (included by BPF C and C++); fixed-width fields, no pointers,
 * no enum-typed fields, explicit padding. Bump TCPTRAIL_ABI_VERSION on any layout change. */
#ifndef TCPTRAIL_EVENTS_H
#define TCPTRAIL_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TCPTRAIL_ABI_VERSION 1
#define TCPTRAIL_COMM_LEN 16

/* tcptrail_event.kind */
#define TCPTRAIL_EV_STATE 1            /* sock:inet_sock_set_state, TCP only */
#define TCPTRAIL_EV_RETRANSMIT 2       /* tcp:tcp_retransmit_skb (detail = segments) */
#define TCPTRAIL_EV_SYNACK_RETRANSMIT 3 /* tcp:tcp_retransmit_synack on a request socket */
#define TCPTRAIL_EV_RESET_SENT 4       /* tcp:tcp_send_reset on a full socket */
#define TCPTRAIL_EV_RESET_RECEIVED 5   /* tcp:tcp_receive_reset */
#define TCPTRAIL_EV_ERROR 6            /* sock:inet_sk_error_report (detail = errno) */

/* tcptrail_event.owner_source: how owner_pid/owner_comm were learned */
#define TCPTRAIL_OWNER_UNKNOWN 0 /* not a system call's transition; pid is 0 */
#define TCPTRAIL_OWNER_SYSCALL 1 /* the task that called connect()/listen()/close()/shutdown() */

/* tcptrail_event.flags */
#define TCPTRAIL_F_RCV_SHUTDOWN 0x01 /* peer's FIN was received (sk_shutdown & RCV_SHUTDOWN) */
#define TCPTRAIL_F_SND_SHUTDOWN 0x02 /* our FIN was queued (sk_shutdown & SEND_SHUTDOWN) */
#define TCPTRAIL_F_ORPHAN 0x04       /* no process holds the socket (SOCK_DEAD) */

struct tcptrail_event {
	__u64 ts_ns;          /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, ns; first, as the
	                       * collector merges the rings by it */
	__u64 sock_cookie;    /* bpf_get_socket_cookie(): the socket's identity, never reused */
	__u64 bytes_acked;    /* tcp_sock.bytes_acked, bytes (tcpi_bytes_acked) */
	__u64 bytes_received; /* tcp_sock.bytes_received, bytes (tcpi_bytes_received) */
	__u64 cgroup_id;      /* cgroup v2 id of the socket (its creator's cgroup), 0 if none */
	__u32 owner_pid;      /* tgid of the owning process, 0 if unknown */
	__u32 total_retrans;  /* tcp_sock.total_retrans, segments (tcpi_total_retrans) */
	__u32 srtt_us;        /* tcp_sock.srtt_us >> 3, microseconds */
	__u32 detail;         /* kind-specific: segments (retransmits), errno (errors); for a
	                       * server child's first state change, ns since it was created in
	                       * SYN_RECV (0: not known) */
	__u32 netns_ino;      /* inode number of the socket's network namespace */
	__u32 sock_ino;       /* inode of the socket file (/proc/PID/fd), entering CLOSE_WAIT or
	                       * FIN_WAIT2 only; else 0 */
	__u8 saddr[16];       /* local address, network byte order; IPv4 in the first 4 bytes */
	__u8 daddr[16];       /* remote address, network byte order; IPv4 in the first 4 bytes */
	__u16 sport;          /* local port, host byte order */
	__u16 dport;          /* remote port, host byte order */
	__u8 kind;            /* TCPTRAIL_EV_* */
	__u8 family;          /* 4 or 6 */
	__u8 old_state;       /* TCP_* state before the change (state at the event for other kinds) */
	__u8 new_state;       /* TCP_* state after the change (equal to old_state for other kinds) */
	__u8 owner_source;    /* TCPTRAIL_OWNER_* */
	__u8 flags;           /* TCPTRAIL_F_* */
	__u16 sk_err;         /* sk->sk_err at the event: errno the socket will report, 0 if none */
	char owner_comm[TCPTRAIL_COMM_LEN]; /* comm of the owner; not NUL-terminated if 16 bytes */
	__u8 reserved[4];     /* explicit padding to a multiple of 8; zero */
};

#define TCPTRAIL_EVENT_SIZE 128

/* Indexes of the per-CPU `drops` counters. */
#define TCPTRAIL_DROP_RINGBUF 0 /* bpf_ringbuf_reserve failed: the event is lost */
#define TCPTRAIL_DROP_NO_RING 1 /* the CPU has no ring: it came online after the start */
#define TCPTRAIL_DROP_MAX 2

#ifdef __cplusplus
static_assert(sizeof(struct tcptrail_event) == TCPTRAIL_EVENT_SIZE, "ABI size");
#else
_Static_assert(sizeof(struct tcptrail_event) == TCPTRAIL_EVENT_SIZE, "ABI size");
#endif

#endif /* TCPTRAIL_EVENTS_H */
