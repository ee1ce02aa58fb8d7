/* The lifecycle fold: how each state change of a socket updates its struct tcptrail_conn. The
 * BPF program runs it on the `conns` map entry; the unit tests run the same code with a fake
 * clock. Pure C over the entry and plain values: no kernel reads, no maps, no helpers. */
#ifndef TCPTRAIL_FOLD_H
#define TCPTRAIL_FOLD_H

#include "tcptrail/events.h"

#define TCPTRAIL_FOLD static inline __attribute__((always_inline))

/* TCP states (include/net/tcp_states.h), under names of our own: vmlinux.h and the C library
 * both define TCP_* differently. */
#define TT_ESTABLISHED 1
#define TT_SYN_SENT 2
#define TT_SYN_RECV 3
#define TT_FIN_WAIT1 4
#define TT_FIN_WAIT2 5
#define TT_TIME_WAIT 6
#define TT_CLOSE 7
#define TT_CLOSE_WAIT 8
#define TT_LAST_ACK 9
#define TT_LISTEN 10
#define TT_CLOSING 11

/* What a state change means for the socket's entry (see tcptrail_admit). */
#define TCPTRAIL_ADMIT_CONTINUE 0    /* fold it into the entry */
#define TCPTRAIL_ADMIT_CLIENT 1      /* connect(): a new lifecycle */
#define TCPTRAIL_ADMIT_CHILD 2       /* a server child leaving SYN_RECV: a new lifecycle */
#define TCPTRAIL_ADMIT_PREEXISTING 3 /* first seen mid-life */
#define TCPTRAIL_ADMIT_LATE 4        /* after CLOSE, and no new connect(): ignored */

/* Index of a state in the TCPTRAIL_TIMED_STATES order, or -1. */
TCPTRAIL_FOLD int tcptrail_timed_index(__u8 state)
{
	switch (state) {
	case TT_SYN_SENT: return 0;
	case TT_SYN_RECV: return 1;
	case TT_ESTABLISHED: return 2;
	case TT_FIN_WAIT1: return 3;
	case TT_FIN_WAIT2: return 4;
	case TT_CLOSE_WAIT: return 5;
	case TT_LAST_ACK: return 6;
	case TT_CLOSING: return 7;
	default: return -1;
	}
}

TCPTRAIL_FOLD void tcptrail_path_push(struct tcptrail_conn *c, __u8 state)
{
	__u8 len = c->path_len & ~TCPTRAIL_PATH_TRUNCATED;

	if (len < TCPTRAIL_PATH_MAX) {
		c->path[len] = state;
		c->path_len = (c->path_len & TCPTRAIL_PATH_TRUNCATED) | (len + 1);
	} else {
		c->path_len |= TCPTRAIL_PATH_TRUNCATED;
	}
}

/* c: the socket's entry, or NULL. A server child is first seen leaving SYN_RECV: its creation
 * is reported before its tuple and cookie are set. *keep_id: a birth replaces an entry the
 * collector seeded from the start-up snapshot (born while the snapshot was read), which keeps
 * its id. */
TCPTRAIL_FOLD int tcptrail_admit(const struct tcptrail_conn *c, __u8 old_state, __u8 new_state,
				 int *keep_id)
{
	int client_birth = new_state == TT_SYN_SENT;
	int child_birth = old_state == TT_SYN_RECV;
	int birth = client_birth ? TCPTRAIL_ADMIT_CLIENT : TCPTRAIL_ADMIT_CHILD;

	*keep_id = 0;
	if (c) {
		if ((c->flags & TCPTRAIL_C_CLOSED) && client_birth)
			return TCPTRAIL_ADMIT_CLIENT; /* connect() again after a failed attempt */
		if ((c->flags & TCPTRAIL_C_PREEXISTING) && (client_birth || child_birth)) {
			*keep_id = 1;
			return birth;
		}
		return (c->flags & TCPTRAIL_C_CLOSED) ? TCPTRAIL_ADMIT_LATE : TCPTRAIL_ADMIT_CONTINUE;
	}
	if (client_birth || child_birth)
		return birth;
	return old_state != TT_CLOSE ? TCPTRAIL_ADMIT_PREEXISTING : TCPTRAIL_ADMIT_LATE;
}

/* A new lifecycle in a zeroed entry. child_age_ns: for a child, how long ago it was created
 * (0: not seen). total_retrans: what the socket had retransmitted before (a child: its request
 * socket's SYN-ACKs, reported as they went). The caller sets the owner. */
TCPTRAIL_FOLD void tcptrail_begin(struct tcptrail_conn *c, int admit, __u64 conn_id, __u64 now_ns,
				  __u8 old_state, __u64 child_age_ns, __u32 total_retrans)
{
	c->conn_id = conn_id;
	c->retrans_reported = total_retrans;
	c->first_ns = now_ns;
	c->state_since_ns = now_ns;
	c->state = old_state;
	if (admit == TCPTRAIL_ADMIT_CLIENT) {
		c->role = TCPTRAIL_ROLE_CLIENT;
		c->flags |= TCPTRAIL_C_FIRST_TIMED;
	} else if (admit == TCPTRAIL_ADMIT_CHILD) {
		c->role = TCPTRAIL_ROLE_SERVER;
		tcptrail_path_push(c, TT_SYN_RECV);
		if (child_age_ns != 0 && child_age_ns <= now_ns) {
			c->first_ns = now_ns - child_age_ns;
			c->state_since_ns = c->first_ns;
			c->flags |= TCPTRAIL_C_FIRST_TIMED;
		}
	} else {
		/* Found mid-life: the path starts at the state it was found in, whose time before
		 * tracing is unknown and never counted. */
		c->flags |= TCPTRAIL_C_PREEXISTING;
		tcptrail_path_push(c, old_state);
	}
}

/* What a socket first seen at an event of `kind` had retransmitted before it, its count being
 * total_retrans: the segments of a retransmit that went out (detail) are counted by then, and
 * are that event's to report. */
TCPTRAIL_FOLD __u32 tcptrail_retrans_before(__u8 kind, __u32 detail, __u32 total_retrans)
{
	if (kind == TCPTRAIL_EV_RETRANSMIT && total_retrans >= detail)
		return total_retrans - detail;
	return total_retrans;
}

/* A retransmit attempt, after which the socket's count is total_retrans. The kernel counts the
 * segments of a retransmit before sending them and keeps the count when sending fails
 * (TCPRetransFail: a local drop, no buffer), while some attempts fail before counting (the
 * segment still in a queue): the segments counted since the last event are what this one
 * carries, so that a connection's retransmit events add up to its total_retrans. 0: nothing
 * was counted, no event. */
TCPTRAIL_FOLD __u32 tcptrail_retransmitted(struct tcptrail_conn *c, __u32 total_retrans)
{
	/* Below what was reported: tcp_disconnect() zeroed the count. */
	__u32 segs = total_retrans >= c->retrans_reported ? total_retrans - c->retrans_reported
							  : total_retrans;

	c->retrans_reported = total_retrans;
	return segs;
}

/* Folds a change to new_state at now_ns. total_retrans and srtt_us are the socket's now.
 * Returns the time spent in the old state; *known tells whether that time is known. */
TCPTRAIL_FOLD __u64 tcptrail_fold_state(struct tcptrail_conn *c, __u64 now_ns, __u8 new_state,
					__u32 total_retrans, __u32 srtt_us, int *known)
{
	__u8 old_state = c->state;
	__u64 ns_in_old = now_ns >= c->state_since_ns ? now_ns - c->state_since_ns : 0;
	int index = tcptrail_timed_index(old_state);

	*known = (c->flags & TCPTRAIL_C_FIRST_TIMED) ||
		 (c->path_len & ~TCPTRAIL_PATH_TRUNCATED) > 1;
	/* Everything a socket retransmits in SYN_SENT is a SYN: the kernel's own count when it
	 * leaves that state is exact, which counting retransmit events would not always be. */
	if (old_state == TT_SYN_SENT)
		c->syn_retransmits = total_retrans;
	if (index >= 0 && index < TCPTRAIL_TIMED_STATES && *known)
		c->state_ns[index] += ns_in_old;
	if (new_state == TT_ESTABLISHED && !(c->flags & TCPTRAIL_C_ESTABLISHED)) {
		c->flags |= TCPTRAIL_C_ESTABLISHED;
		if (old_state == TT_SYN_SENT && !(c->flags & TCPTRAIL_C_PREEXISTING)) {
			c->handshake_us = (__u32)((now_ns - c->first_ns) / 1000);
			c->flags |= TCPTRAIL_C_HANDSHAKE;
		} else if (old_state == TT_SYN_RECV) {
			/* The child is born on the final ACK: the handshake it saw is the SYN-ACK
			 * round trip, which the kernel measured; the request socket's SYN-ACK
			 * retransmits became its total_retrans. */
			c->synack_retransmits = total_retrans;
			if (srtt_us != 0) {
				c->handshake_us = srtt_us;
				c->flags |= TCPTRAIL_C_HANDSHAKE;
			}
		}
	}
	tcptrail_path_push(c, new_state);
	c->state = new_state;
	c->state_since_ns = now_ns;
	if (new_state == TT_CLOSE) {
		c->closed_from = old_state;
		c->end_ns = now_ns;
		c->flags |= TCPTRAIL_C_CLOSED;
	}
	return ns_in_old;
}

/* Whether the record of a connection that just reached CLOSE waits for the RST the kernel sends
 * next. A close() with unread data or with SO_LINGER {1, 0}, and tcp_disconnect(), move the
 * socket to CLOSE first and send the RST after (__tcp_close, tcp_disconnect); a record sent at
 * CLOSE would not know it was reset, and the RST may follow it by more than any grace the
 * collector could wait (the closing task can be preempted in between). Every other CLOSE from
 * these states comes with an error or a received reset. FIN_WAIT1 and FIN_WAIT2 are left out:
 * their usual way to CLOSE is the hand-off to a TIME_WAIT socket, which no RST follows. The
 * record is sent at the RST, or when the socket is destroyed without one. */
TCPTRAIL_FOLD int tcptrail_close_awaits_reset(const struct tcptrail_conn *c)
{
	if (c->error || (c->flags & (TCPTRAIL_C_RESET_SENT | TCPTRAIL_C_RESET_RECEIVED)))
		return 0;
	switch (c->closed_from) {
	case TT_ESTABLISHED:
	case TT_CLOSE_WAIT:
	case TT_SYN_RECV:
		return 1;
	default:
		return 0;
	}
}

#endif /* TCPTRAIL_FOLD_H */
