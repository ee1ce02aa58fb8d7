/* Readers for struct sock and friends, shared by the programs in tcptrail.bpf.c.
 *
 * tp_btf arguments are trusted BTF pointers: fields are read with plain loads (CO-RE
 * relocated through vmlinux.h's preserve_access_index), which the verifier allows and the JIT
 * turns into single instructions. That is several times cheaper than one
 * bpf_probe_read_kernel() call per field, which BPF_CORE_READ() would make. */
#ifndef TCPTRAIL_SOCK_BPF_H
#define TCPTRAIL_SOCK_BPF_H

#define AF_INET 2
#define AF_INET6 10
#define SOCK_DEAD 0 /* enum sock_flags bit */
#define RCV_SHUTDOWN 1
#define SEND_SHUTDOWN 2

static __always_inline int sock_family_to_abi(__u16 family)
{
	if (family == AF_INET)
		return 4;
	if (family == AF_INET6)
		return 6;
	return 0;
}

/* Local and remote addresses and ports of any socket that starts with sock_common (full and
 * request sockets alike). The local port is skc_num, which a request socket carries; callers
 * with a full socket override it from inet_sport (see fill_full_sock). */
static __always_inline void fill_tuple(struct tcptrail_event *e, const struct sock_common *skc)
{
	if (e->family == 4) {
		__u32 saddr = skc->skc_rcv_saddr;
		__u32 daddr = skc->skc_daddr;

		__builtin_memcpy(e->saddr, &saddr, 4);
		__builtin_memcpy(e->daddr, &daddr, 4);
	} else {
		struct in6_addr saddr = skc->skc_v6_rcv_saddr;
		struct in6_addr daddr = skc->skc_v6_daddr;

		__builtin_memcpy(e->saddr, &saddr, 16);
		__builtin_memcpy(e->daddr, &daddr, 16);
	}
	e->sport = skc->skc_num;
	e->dport = bpf_ntohs(skc->skc_dport);
	e->netns_ino = skc->skc_net.net->ns.inum;
}

/* The socket file's inode, as /proc/PID/fd names it: three dependent loads, often cold, so
 * it is read only where the leak detector needs it. */
static __always_inline void fill_inode(struct tcptrail_event *e, const struct sock *sk)
{
	struct socket *sock = sk->sk_socket;

	if (sock && sock->file)
		e->sock_ino = sock->file->f_inode->i_ino;
}

/* Counters and flags of a full TCP socket, read at the moment of the event. */
static __always_inline void fill_full_sock(struct tcptrail_event *e, const struct sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	__u8 shutdown;

	if (!tp)
		return;
	/* At the CLOSE transition the bound port (skc_num) may already be released by
	 * inet_put_port(); inet_sport still holds it. */
	e->sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	e->bytes_acked = tp->bytes_acked;
	e->bytes_received = tp->bytes_received;
	e->total_retrans = tp->total_retrans;
	e->srtt_us = tp->srtt_us >> 3;
	e->sk_err = sk->sk_err;
	/* The cgroup the socket was created in (sock_cgroup_ptr()): the container or service it
	 * belongs to, whichever task is on-CPU. */
	if (sk->sk_cgrp_data.cgroup)
		e->cgroup_id = sk->sk_cgrp_data.cgroup->kn->id;

	shutdown = BPF_CORE_READ_BITFIELD(sk, sk_shutdown);
	if (shutdown & RCV_SHUTDOWN)
		e->flags |= TCPTRAIL_F_RCV_SHUTDOWN;
	if (shutdown & SEND_SHUTDOWN)
		e->flags |= TCPTRAIL_F_SND_SHUTDOWN;
	if (sk->__sk_common.skc_flags & (1UL << SOCK_DEAD))
		e->flags |= TCPTRAIL_F_ORPHAN;
}

#endif /* TCPTRAIL_SOCK_BPF_H */
