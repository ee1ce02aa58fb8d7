#!/usr/bin/env python3
"""Memory of tcptrail with many connections held open (issue 13): a measurement, not a test.

As root:  bench/open_connections.py [--connections 100000] [--interim 1s] [--hold 20]

Runs `tcptrail --json --interim D -o FILE`, then, in a network namespace of its own, opens
N loopback connections and keeps both ends open for --hold seconds, through several interim
periods. Prints, as JSON lines, the tracer's RSS (VmRSS) and its BPF maps' memory (bpftool's
bytes_memlock, the kernel's own account of each map) before the connections, once they are
all open, and at the end; then the cost per open connection (each is two sockets, both traced)
beyond the base, and whether the RSS still grew during the hold.
"""
import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

def hold_connections(count, index):
    """A child, inside the namespace: opens `count` connections to a listener of its own (port
    1000 + index), says so, and keeps them until stdin gives a line."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 1000 + index))
    listener.listen(4096)
    held = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        held += (client, server)
    print("open", len(held) // 2, flush=True)
    sys.stdin.readline()


def children_for(connections):
    """How many holders, and connections each: a process may hold RLIMIT_NOFILE descriptors,
    which only CAP_SYS_RESOURCE raises past the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    per_child = max(1, min(connections, (hard - 64) // 2))
    count = (connections + per_child - 1) // per_child
    return [per_child] * (count - 1) + [connections - per_child * (count - 1)]


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def map_bytes():
    """tcptrail's BPF maps: those its programs use, and its ring buffers (inner maps)."""
    def show(kind):
        out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                             check=True).stdout
        return json.loads(out)
    ids = {i for p in show("prog") if p.get("name", "").startswith("tp_btf__")
           for i in p.get("map_ids", [])}
    maps = [m for m in show("map") if m["id"] in ids or m.get("name") == "tcptrail_ring"]
    return sum(m.get("bytes_memlock", 0) for m in maps), {
        m.get("name", "?"): m.get("bytes_memlock", 0) for m in maps if m["id"] in ids}


def sample(label, pid, t0):
    total, per_map = map_bytes()
    row = {"at": label, "t_s": round(time.monotonic() - t0, 1), "rss": rss_bytes(pid),
           "bpf_maps": total, "maps": per_map}
    print(json.dumps(row), flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=100000)
    p.add_argument("--interim", default="1s", help="the tracer's --interim D, or off")
    p.add_argument("--hold", type=float, default=20, help="seconds the connections stay open")
    p.add_argument("--build-dir", default="build")
    p.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.child:
        hold_connections(*args.child)
        return
    if os.geteuid() != 0:
        sys.exit("open_connections.py: run as root (tcptrail, ip netns)")

    netns = f"tcptrail-mem-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="tcptrail-mem-")
    tracer = None
    holders = []
    try:
        subprocess.run(["ip", "netns", "add", netns], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw",
                        "net.ipv4.ip_local_port_range=1024 65535"], check=True)
        out = os.path.join(tmp, "trace.ndjson")
        interim = ["--interim", args.interim] if args.interim != "off" else []
        tracer = subprocess.Popen([os.path.join(args.build_dir, "tcptrail"), "--json", *interim,
                                   "-o", out], stderr=open(os.path.join(tmp, "err"), "w"))
        deadline = time.monotonic() + 60
        while not (os.path.exists(out) and os.path.getsize(out) > 0):
            if tracer.poll() is not None or time.monotonic() > deadline:
                sys.exit("tcptrail did not start: " + open(os.path.join(tmp, "err")).read())
            time.sleep(0.2)
        t0 = time.monotonic()
        time.sleep(2)
        base = sample("base", tracer.pid, t0)
        for index, count in enumerate(children_for(args.connections)):
            holders.append(subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, __file__, "--child", str(count),
                 str(index)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            if not holders[-1].stdout.readline().startswith("open"):
                sys.exit("the connections could not be opened")
        opened = sample("open", tracer.pid, t0)
        rows = []
        end = time.monotonic() + args.hold
        while time.monotonic() < end:
            time.sleep(min(5, max(0.1, end - time.monotonic())))
            rows.append(sample("hold", tracer.pid, t0))
        last = rows[-1]
        for holder in holders:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(60)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(60)
        interim = 0
        with open(out) as f:
            for record in f:
                interim += '"type":"interim"' in record
        sockets = 2 * args.connections
        peak_rss = max(r["rss"] for r in rows + [opened])
        print(json.dumps({
            "connections": args.connections, "sockets": sockets, "interim_records": interim,
            "rss_base_mib": round(base["rss"] / 2**20, 1),
            "rss_peak_mib": round(peak_rss / 2**20, 1),
            "rss_per_connection": round((peak_rss - base["rss"]) / args.connections),
            "bpf_maps_base_mib": round(base["bpf_maps"] / 2**20, 1),
            "bpf_per_connection": round((last["bpf_maps"] - base["bpf_maps"]) / args.connections),
            "rss_growth_during_hold_mib": round((last["rss"] - rows[0]["rss"]) / 2**20, 1),
        }), flush=True)
    finally:
        for proc in holders + [tracer]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "delete", netns], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
