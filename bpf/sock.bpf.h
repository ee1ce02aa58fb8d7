/* CO-RE readers for struct sock and friends, shared by the programs in tcptrail.bpf.c. */
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

/* Local and remote addresses and ports of any socket that starts with sock_common (full,
 * request and timewait sockets alike). The local port is skc_num, which a request socket
 * carries; callers with a full socket override it from inet_sport (see fill_full_sock). */
static __always_inline void fill_tuple(struct tcptrail_event *e, const struct sock_common *skc)
{
	/* Explicit sizes: BPF_CORE_READ_INTO on an array would copy only its first byte. */
	if (e->family == 4) {
		bpf_core_read(e->saddr, 4, &skc->skc_rcv_saddr);
		bpf_core_read(e->daddr, 4, &skc->skc_daddr);
	} else {
		bpf_core_read(e->saddr, 16, &skc->skc_v6_rcv_saddr);
		bpf_core_read(e->daddr, 16, &skc->skc_v6_daddr);
	}
	e->sport = BPF_CORE_READ(skc, skc_num);
	e->dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	e->netns_ino = BPF_CORE_READ(skc, skc_net.net, ns.inum);
}

/* Counters and flags of a full TCP socket, read at the moment of the event. */
static __always_inline void fill_full_sock(struct tcptrail_event *e, const struct sock *sk)
{
	const struct tcp_sock *tp = (const struct tcp_sock *)sk;
	struct socket *sock;
	__u8 shutdown;

	/* At the CLOSE transition the bound port (skc_num) may already be released by
	 * inet_put_port(); inet_sport still holds it. */
	e->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	e->bytes_acked = BPF_CORE_READ(tp, bytes_acked);
	e->bytes_received = BPF_CORE_READ(tp, bytes_received);
	e->total_retrans = BPF_CORE_READ(tp, total_retrans);
	e->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
	e->sk_err = BPF_CORE_READ(sk, sk_err);

	shutdown = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown);
	if (shutdown & RCV_SHUTDOWN)
		e->flags |= TCPTRAIL_F_RCV_SHUTDOWN;
	if (shutdown & SEND_SHUTDOWN)
		e->flags |= TCPTRAIL_F_SND_SHUTDOWN;
	if (BPF_CORE_READ(sk, __sk_common.skc_flags) & (1UL << SOCK_DEAD))
		e->flags |= TCPTRAIL_F_ORPHAN;

	/* SOCK_INODE(): the inode is allocated right after struct socket in socket_alloc. */
	sock = BPF_CORE_READ(sk, sk_socket);
	if (sock)
		e->sock_ino = BPF_CORE_READ((struct socket_alloc *)sock, vfs_inode.i_ino);
}

#endif /* TCPTRAIL_SOCK_BPF_H */
