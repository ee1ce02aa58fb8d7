#!/usr/bin/env bash
# What tracing costs per storm connection, kernel side and collector side, for one or more
# tcptrail binaries in alternating rounds: the BPF programs' run time (the kernel's own
# statistics, kernel.bpf_stats_enabled) and the tracer's CPU time, each divided by the storm's
# connections. Less sensitive to a busy machine than a connection rate. See bench/README.md.
#
# usage: bench/per_connection.sh [--rounds N] [--connections N] [--storm PATH] BIN... [-- ARGS]
#   BIN   a tcptrail binary (several: compared round by round)
#   ARGS  options for `tcptrail trace` after --json -o FILE (e.g. --transitions)
# Exit status: 0 when it ran, 1 on setup failure, 2 on bad usage.
set -uo pipefail

rounds=3
connections=60000
storm=""
bins=()
args=()
while (($#)); do
  case "$1" in
    --rounds) rounds=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --storm) storm=${2:?}; shift 2 ;;
    --) shift; args=("$@"); break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "per_connection.sh: unknown option $1" >&2; exit 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $connections =~ ^[1-9][0-9]*$ ]] ||
  { echo "per_connection.sh: --rounds and --connections take a positive integer" >&2; exit 2; }
((${#bins[@]})) || { echo "per_connection.sh: name at least one tcptrail binary" >&2; exit 2; }
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -n $storm ]] || storm=$script_dir/../build/bench/tcptrail_storm
[[ -x $storm ]] || { echo "per_connection.sh: no storm binary at $storm" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "per_connection.sh: run as root" >&2; exit 1; }

work=$(mktemp -d)
ns=tcptrail-cost-$$
tracer=""
stats_were=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [[ -n $tracer ]] && kill -KILL "$tracer" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$work"
  sysctl -qw kernel.bpf_stats_enabled="$stats_were"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
sysctl -qw kernel.bpf_stats_enabled=1

# One traced storm: prints "bpf_ns_per_conn tracer_us_per_conn lost connections".
measure() {
  local bin=$1 out=$work/run
  rm -rf "$out" && mkdir -p "$out"
  ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
  bpftool prog show -j >"$out/others.json"
  "$bin" trace --json -o "$out/records.json" "${args[@]}" 2>"$out/stderr" &
  tracer=$!
  sleep 2
  local before
  before=$(awk '{print $14 + $15}' "/proc/$tracer/stat")
  bpftool prog show -j >"$out/before.json"
  timeout 300 ip netns exec "$ns" "$storm" --threads 2 --connections "$connections" \
    >"$out/storm.json" || return 1
  sleep 1.5  # the last records: staged ones go within 50 ms, the output within 100 ms
  local after
  after=$(awk '{print $14 + $15}' "/proc/$tracer/stat")
  bpftool prog show -j >"$out/after.json"
  kill -INT "$tracer" && wait "$tracer"
  tracer=""
  ip netns del "$ns"
  python3 - "$out" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
out, before, after, hz = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def runtime(name):
    return {p["id"]: p.get("run_time_ns", 0) for p in json.load(open(f"{out}/{name}.json"))}
others, b, a = runtime("others"), runtime("before"), runtime("after")
# This tracer's programs: loaded after it started, before the storm.
ids = [i for i in a if i in b and i not in others]
bpf_ns = sum(a[i] - b[i] for i in ids)
storm = json.load(open(f"{out}/storm.json"))
last = open(f"{out}/records.json").read().strip().split("\n")[-1]
stop = json.loads(last)
n = storm["connections"]
print(f"{bpf_ns / n:.0f} {(after - before) / hz / n * 1e6:.2f} {stop['lost']} {stop['connections']}")
PY
}

echo "per_connection.sh: $rounds rounds of $connections storm connections (2 threads), tcptrail" \
  "trace --json ${args[*]}" >&2
declare -A bpf cpu
for ((round = 1; round <= rounds; ++round)); do
  for bin in "${bins[@]}"; do
    read -r b c lost records < <(measure "$bin") ||
      { echo "per_connection.sh: run of $bin failed" >&2; exit 1; }
    echo "round $round $bin: BPF $b ns/connection, tracer $c us/connection, lost $lost," \
      "connection records $records"
    bpf[$bin]+="$b "
    cpu[$bin]+="$c "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo
printf '%-40s %22s %28s\n' binary "BPF ns/conn (median)" "tracer us/conn (median)"
for bin in "${bins[@]}"; do
  printf '%-40s %22s %28s\n' "$bin" "$(median <<<"${bpf[$bin]}")" "$(median <<<"${cpu[$bin]}")"
done
