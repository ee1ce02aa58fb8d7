// SPDX-License-Identifier: GPL-2.0
/* The floor any tracer of the TCP lifecycle pays: a program attached where tcptrail's is,
 * doing nothing. bench/run.sh's `empty` mode. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(empty_inet_sock_set_state)
{
	return 0;
}
