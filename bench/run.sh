#!/usr/bin/env bash
# Overhead benchmark of issue 5: connection rate of a loopback storm, untraced and under
# tcptrail / tcplife / tcpstates, in alternating rounds. See bench/README.md.
#
# Exit status: 0 when the benchmark ran (whether or not the targets were met), 1 on setup failure
# (missing storm binary, storm failing untraced, bad environment), 2 on bad usage.

set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]
  --rounds N          alternating rounds (default 5; the rate target needs >= 3)
  --duration S        storm seconds per run, fractional ok (default 5)
  --threads N         storm threads (default 2)
  --build-dir DIR     CMake build directory (default build; relative to the repo root)
  --modes LIST        comma-separated subset of untraced,empty,tcptrail,tcptrail-transitions,
                      tcptrail-metrics,tcptrail-interim,tcplife,tcpstates (default: all that
                      are available; untraced is always run). empty: a tp_btf program on
                      inet_sock_set_state that does nothing, the floor any tracer pays;
                      tcptrail-transitions: with --transitions; tcptrail-metrics: with
                      --metrics, scraped every second, and --interim 1s (a fleet agent's
                      configuration, issue 13); tcptrail-interim: with --interim 1s
  --tcptrail PATH     tcptrail binary (default BUILD_DIR/tcptrail)
  --storm PATH        storm binary (default BUILD_DIR/bench/tcptrail_storm)
  --attach-wait S     seconds to let tcplife/tcpstates attach before the storm (default 1.5)
  --drain S           seconds between the storm's end and SIGINT to the tracer (default 1)
  --no-warmup         skip the discarded warm-up storm
  --keep DIR          keep every run's raw files in DIR
  --tracer-cpu PCT    hold every tracer to PCT% of one CPU (cgroup v1 cpu quota), to emulate a
                      machine whose storm is faster than the tracer (e.g. 50)
  --quiet-namespaces N
                      N more network namespaces, each with one listening socket and nothing
                      else, for the whole benchmark: a host with many idle containers
  -h, --help          this text

Build first: cmake -S . -B build && cmake --build build -j2
Run as root (tracers need CAP_BPF and CAP_PERFMON); untraced runs work without.
EOF
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
util="$script_dir/bench_util.py"

rounds=5
duration=5
threads=2
build_dir=build
modes_arg=""
tcptrail_bin=""
storm_bin=""
attach_wait=1.5
drain=1
warmup=1
keep_dir=""
tracer_cpu=""
metrics_port=19465
quiet_namespaces=0

while (($#)); do
  case "$1" in
    --rounds) rounds=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --build-dir) build_dir=${2:?}; shift 2 ;;
    --modes) modes_arg=${2:?}; shift 2 ;;
    --tcptrail) tcptrail_bin=${2:?}; shift 2 ;;
    --storm) storm_bin=${2:?}; shift 2 ;;
    --attach-wait) attach_wait=${2:?}; shift 2 ;;
    --drain) drain=${2:?}; shift 2 ;;
    --no-warmup) warmup=0; shift ;;
    --keep) keep_dir=${2:?}; shift 2 ;;
    --tracer-cpu) tracer_cpu=${2:?}; shift 2 ;;
    --quiet-namespaces) quiet_namespaces=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

is_number() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
for v in "$rounds" "$threads"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: expected a positive integer, got '$v'" >&2; exit 2; }
done
if [[ ! $quiet_namespaces =~ ^[0-9]+$ ]] || ((quiet_namespaces > 500)); then
  echo "run.sh: --quiet-namespaces takes a count from 0 to 500, got '$quiet_namespaces'" >&2
  exit 2
fi
for v in "$duration" "$attach_wait" "$drain"; do
  is_number "$v" || { echo "run.sh: expected a number of seconds, got '$v'" >&2; exit 2; }
done

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 1; }

command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
command -v timeout >/dev/null || die "timeout not found (coreutils)"

if [[ $build_dir != /* && ! -d $build_dir && -d $repo_root/$build_dir ]]; then
  build_dir=$repo_root/$build_dir
fi
[[ -n $storm_bin ]] || storm_bin=$build_dir/bench/tcptrail_storm
[[ -n $tcptrail_bin ]] || tcptrail_bin=$build_dir/tcptrail
empty_bin=$build_dir/bench/tcptrail_empty_tracer
cpu_cgroup=""
if [[ -n $tracer_cpu ]]; then
  if [[ ! $tracer_cpu =~ ^[0-9]+$ ]] || ((tracer_cpu < 1 || tracer_cpu > 100)); then
    echo "run.sh: --tracer-cpu takes a percentage from 1 to 100" >&2
    exit 2
  fi
  cpu_cgroup=/sys/fs/cgroup/cpu/tcptrail-bench.$$
  if ! mkdir "$cpu_cgroup" 2>/dev/null; then
    echo "run.sh: --tracer-cpu needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu" >&2
    exit 1
  fi
  echo 100000 >"$cpu_cgroup/cpu.cfs_period_us"
  echo $((tracer_cpu * 1000)) >"$cpu_cgroup/cpu.cfs_quota_us"
fi
[[ -x $storm_bin ]] || die "storm generator not found at $storm_bin; build it:" \
  "cmake -S . -B build && cmake --build build -j2 --target tcptrail_storm"

tmp=$(mktemp -d /tmp/tcptrail-bench.XXXXXX) || die "mktemp failed"
tracer_pid=""
mounted_tracefs=0
stats_sysctl=/proc/sys/kernel/bpf_stats_enabled
stats_were="" # the value to restore at exit, when the runs turned it off
# Each storm runs in a network namespace of its own, made for it and deleted after it: every
# run starts from an empty socket table instead of the TIME_WAIT sockets of the runs before
# it, which otherwise made rates vary by ±5% from run to run. Needs root and iproute2.
bench_ns=""
if [[ $(id -u) == 0 ]] && command -v ip >/dev/null; then
  bench_ns=tcptrail-bench-$$
fi

quiet_pids=()
cleanup() {
  if ((${#quiet_pids[@]})); then
    kill "${quiet_pids[@]}" 2>/dev/null
    wait "${quiet_pids[@]}" 2>/dev/null
  fi
  for ((i = 0; i < quiet_namespaces; i++)); do
    ip netns del "tcptrail-bench-$$-q$i" 2>/dev/null
  done
  if [[ -n $tracer_pid ]] && kill -0 "$tracer_pid" 2>/dev/null; then
    # The wrapper forwards SIGTERM; the tool also dies with it (PR_SET_PDEATHSIG).
    kill -TERM "$tracer_pid" 2>/dev/null
    sleep 0.5
    kill -KILL "$tracer_pid" 2>/dev/null
    wait "$tracer_pid" 2>/dev/null
  fi
  if [[ -n $keep_dir ]]; then
    mkdir -p "$keep_dir" && cp -r "$tmp"/. "$keep_dir"/ && log "raw files kept in $keep_dir"
  fi
  rm -rf "$tmp"
  [[ -n $bench_ns ]] && ip netns del "$bench_ns" 2>/dev/null
  [[ -n $cpu_cgroup ]] && rmdir "$cpu_cgroup" 2>/dev/null
  if ((mounted_tracefs)); then
    umount /sys/kernel/tracing 2>/dev/null || log "could not unmount /sys/kernel/tracing (busy)"
  fi
  if [[ -n $stats_were ]]; then
    echo "$stats_were" >"$stats_sysctl" 2>/dev/null ||
      log "could not restore kernel.bpf_stats_enabled=$stats_were"
  fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Idle namespaces that every tracer run finds (their listeners' processes name them in /proc).
if ((quiet_namespaces)); then
  [[ $(id -u) == 0 ]] || die "--quiet-namespaces needs root"
  for ((i = 0; i < quiet_namespaces; i++)); do
    ns=tcptrail-bench-$$-q$i
    ip netns add "$ns" && ip -n "$ns" link set lo up || die "cannot create network namespace $ns"
    ip netns exec "$ns" python3 -c 'import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 8080))
s.listen()
time.sleep(1e9)' &
    quiet_pids+=($!)
  done
  log "$quiet_namespaces quiet namespaces, one listener each"
fi

want_mode() { [[ -z $modes_arg || ,$modes_arg, == *,$1,* ]]; }

modes=(untraced)
is_root=0
[[ $(id -u) == 0 ]] && is_root=1
if want_mode empty; then
  if [[ ! -x $empty_bin ]]; then
    echo "empty: not built, skipped ($empty_bin missing)"
  elif ((!is_root)); then
    echo "empty: needs root, skipped"
  else
    modes+=(empty)
  fi
fi
for mode in tcptrail tcptrail-transitions tcptrail-metrics tcptrail-interim; do
  want_mode "$mode" || continue
  if [[ ! -x $tcptrail_bin ]]; then
    echo "$mode: not built, skipped ($tcptrail_bin missing)"
  elif ((!is_root)); then
    echo "$mode: needs root, skipped"
  else
    modes+=("$mode")
  fi
done
baselines=()
for tool in tcplife tcpstates; do
  want_mode "$tool" || continue
  if [[ ! -x /usr/sbin/$tool ]]; then
    echo "$tool: not installed (apt-get install libbpf-tools), skipped"
  elif ((!is_root)); then
    echo "$tool: needs root, skipped"
  else
    baselines+=("$tool")
  fi
done
# libbpf-tools attach sock:inet_sock_set_state through tracefs; some systems do not mount it.
if ((${#baselines[@]})) && [[ ! -d /sys/kernel/tracing/events ]]; then
  if mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    mounted_tracefs=1
    log "mounted tracefs on /sys/kernel/tracing for tcplife/tcpstates (unmounted at exit)"
  else
    echo "tcplife/tcpstates: tracefs not mounted and mount failed, skipped"
    baselines=()
  fi
fi
modes+=("${baselines[@]}")

# The storm spreads connections over many listener ports so the 4-tuple space outgrows the
# TIME_WAIT table; no sysctl is changed. Report the settings that matter, as the storm sees
# them (a new namespace starts from the kernel's defaults for these).
sysctl_values() {
  local -a in_ns=()
  if [[ -n $bench_ns ]] && ip netns add "$bench_ns" 2>/dev/null; then
    in_ns=(ip netns exec "$bench_ns")
  fi
  local v
  for v in ip_local_port_range tcp_tw_reuse tcp_max_tw_buckets; do
    printf '%s=%s ' "$v" "$("${in_ns[@]}" cat "/proc/sys/net/ipv4/$v" 2>/dev/null | tr -s '\t ' ' ')"
  done
  ((${#in_ns[@]})) && ip netns del "$bench_ns"
}
log "$(sysctl_values)"

# kernel.bpf_stats_enabled makes every BPF program run read the clock twice (sched_clock(), a
# paravirtual clock read on a VM), a cost that tracers running more programs pay more of and
# that users do not pay (it is off by default): turned off for the runs, restored at exit.
if ((is_root)) && [[ -r $stats_sysctl ]] && [[ $(<"$stats_sysctl") != 0 ]]; then
  stats_were=$(<"$stats_sysctl")
  if echo 0 >"$stats_sysctl" 2>/dev/null; then
    log "kernel.bpf_stats_enabled was $stats_were: off for the runs, restored at exit"
  else
    log "kernel.bpf_stats_enabled is $stats_were and could not be turned off: every program run pays for it"
    stats_were=""
  fi
fi

# BPF tracing programs loaded by anything else (another tracer left running) slow down the
# "untraced" runs too; each untraced run notes them, and the report warns.
foreign_tracing_progs() {
  command -v bpftool >/dev/null || return 0
  bpftool -j prog show 2>/dev/null | python3 -c '
import json, sys
try:
    progs = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
kinds = {"tracing", "tracepoint", "raw_tracepoint", "raw_tracepoint_writable", "kprobe",
         "perf_event"}
names = sorted({p.get("name", "?") for p in progs if p.get("type") in kinds})
print(" ".join(names))'
}

storm_timeout=$(awk -v d="$duration" 'BEGIN { printf "%.1f", d + 60 }')
results=$tmp/results.ndjson
: >"$results"

# run_storm DIR [extra storm options...]: runs the storm, its JSON line to DIR/storm.json.
run_storm() {
  local dir=$1 rc=0
  shift
  local -a in_ns=()
  if [[ -n $bench_ns ]]; then
    ip netns add "$bench_ns" && ip -n "$bench_ns" link set lo up ||
      die "cannot create network namespace $bench_ns"
    in_ns=(ip netns exec "$bench_ns")
  fi
  timeout -s KILL "$storm_timeout" "${in_ns[@]}" "$storm_bin" --threads "$threads" \
    --duration "$duration" "$@" >"$dir/storm.json" 2>"$dir/storm.err" || rc=$?
  [[ -n $bench_ns ]] && ip netns del "$bench_ns"
  return $rc
}

# Waits (20 s at most) until the machine is idle: the kernel frees a deleted namespace's
# sockets in the background, and that work must not land on the next run.
wait_idle() { python3 "$util" idle --max 20 >/dev/null; }

# wait_start FILE PID: until tcptrail's {"type":"start"} line is in FILE (20 s at most).
wait_start() {
  local file=$1 pid=$2 i
  for ((i = 0; i < 200; i++)); do
    grep -qE '"type" *: *"start"' "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_tracer: SIGINT, then 15 s for it to drain and exit, then SIGKILL. Sets tool_exit.
stop_tracer() {
  local i
  kill -INT "$tracer_pid" 2>/dev/null
  for ((i = 0; i < 150; i++)); do
    kill -0 "$tracer_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$tracer_pid" 2>/dev/null; then
    log "tracer did not exit 15 s after SIGINT, killing it"
    kill -KILL "$tracer_pid" 2>/dev/null
  fi
  wait "$tracer_pid" 2>/dev/null
  tool_exit=$?
  tracer_pid=""
}

# The memory of tcptrail's BPF maps now (bpftool's bytes_memlock: the kernel's own account of
# each map's use): the maps its programs use, and its ring buffers (inner maps, which no program
# names).
tcptrail_map_bytes() {
  command -v bpftool >/dev/null || return 0
  python3 -c '
import json, subprocess, sys
def show(kind):
    try:
        return json.loads(subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True,
                                         text=True).stdout)
    except ValueError:
        sys.exit(0)
ids = {i for p in show("prog") if p.get("name", "").startswith("tp_btf__")
       for i in p.get("map_ids", [])}
print(sum(m.get("bytes_memlock", 0) for m in show("map")
          if m["id"] in ids or m.get("name") == "tcptrail_ring"))'
}

# run_one MODE ROUND: one storm under MODE, one result line appended to $results.
run_one() {
  local mode=$1 round=$2
  local dir=$tmp/$mode.$round
  mkdir -p "$dir"
  local out=$dir/output err=$dir/stderr rusage=$dir/rusage.json record=""
  local -a tracer_cmd=()
  tool_exit=""
  local note=""
  case "$mode" in
    untraced)
      note=$(foreign_tracing_progs)
      [[ -n $note ]] && note="BPF tracing programs of another tool were loaded: $note"
      ;;
    empty) tracer_cmd=("$empty_bin") ;;
    tcptrail) tracer_cmd=("$tcptrail_bin" trace --json --output "$out"); record=$dir/record ;;
    tcptrail-transitions)
      tracer_cmd=("$tcptrail_bin" trace --json --transitions --output "$out")
      record=$dir/record
      ;;
    tcptrail-metrics)
      tracer_cmd=("$tcptrail_bin" trace --json --interim 1s --output "$out"
        --metrics "127.0.0.1:$metrics_port")
      record=$dir/record
      ;;
    tcptrail-interim)
      tracer_cmd=("$tcptrail_bin" trace --json --interim 1s --output "$out")
      record=$dir/record
      ;;
    tcplife) tracer_cmd=(/usr/sbin/tcplife); record=$dir/record ;;
    tcpstates) tracer_cmd=(/usr/sbin/tcpstates) ;;
  esac

  if ((${#tracer_cmd[@]})); then
    local stdout=$out
    [[ $mode == tcptrail* || $mode == empty ]] && stdout=$dir/stdout
    if [[ -n $tracer_cpu ]]; then
      # The wrapper joins the limited cgroup before it execs, so the tracer starts inside it.
      sh -c 'echo $$ >"$1/tasks" && shift && exec "$@"' sh "$cpu_cgroup" \
        python3 "$util" rusage "$rusage" -- "${tracer_cmd[@]}" >"$stdout" 2>"$err" &
    else
      python3 "$util" rusage "$rusage" -- "${tracer_cmd[@]}" >"$stdout" 2>"$err" &
    fi
    tracer_pid=$!
    local ready=0
    if [[ $mode == tcptrail* ]]; then
      wait_start "$out" "$tracer_pid" && ready=1
    else
      sleep "$attach_wait"
      kill -0 "$tracer_pid" 2>/dev/null && ready=1
    fi
    if ((!ready)); then
      log "$mode round $round: tracer did not start; its stderr:"
      tail -n 5 "$err" >&2
      [[ -n $tracer_pid ]] && stop_tracer
      echo "{\"mode\":\"$mode\",\"round\":$round,\"failed\":true,\"tool_exit\":${tool_exit:-null}}" \
        >>"$results"
      return 0
    fi
  fi

  local storm_rc=0
  # The maps at their fullest: sampled late in the storm, while connections are open.
  local sampler=""
  if [[ $mode == tcptrail* ]]; then
    (sleep "$(awk -v d="$duration" 'BEGIN { print d * 0.8 }')" && tcptrail_map_bytes \
      >"$dir/map_bytes") &
    sampler=$!
  fi
  # Scraped as Prometheus would, so that the cost of rendering is in the figure.
  local scraper=""
  if [[ $mode == tcptrail-metrics ]]; then
    (while kill -0 "$tracer_pid" 2>/dev/null; do
      curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics"
      sleep 1
    done) &
    scraper=$!
  fi
  if [[ -n $record ]]; then
    run_storm "$dir" --record "$record" || storm_rc=$?
  else
    run_storm "$dir" || storm_rc=$?
  fi
  [[ -n $scraper ]] && kill "$scraper" 2>/dev/null
  if ((storm_rc != 0)); then
    log "$mode round $round: storm failed (exit $storm_rc): $(tail -n 3 "$dir/storm.err")"
  fi

  local map_bytes=""
  if [[ -n $sampler ]]; then
    wait "$sampler"
    map_bytes=$(cat "$dir/map_bytes" 2>/dev/null)
  fi
  if [[ -n $tracer_pid ]]; then
    sleep "$drain"
    stop_tracer
  fi

  local -a args=(--mode "$mode" --round "$round" --storm "$dir/storm.json")
  [[ -n $tool_exit ]] && args+=(--tool-exit "$tool_exit" --rusage "$rusage" --output "$out"
    --stderr "$err")
  [[ -n $record ]] && args+=(--record "$record")
  [[ -n $note ]] && args+=(--note "$note")
  [[ -n $map_bytes ]] && args+=(--map-bytes "$map_bytes")
  python3 "$util" result "${args[@]}" >>"$results" || die "cannot score $mode round $round"
  [[ $mode == untraced && $storm_rc != 0 ]] && die "the untraced storm failed: setup problem"
  # Tracer outputs run to hundreds of MB (tcpstates: ~10 lines per connection).
  [[ -z $keep_dir ]] && rm -f "$record" "$out"
  return 0
}

log "modes: ${modes[*]}; $rounds rounds of ${duration}s, $threads storm threads"
[[ -n $bench_ns ]] || log "not root or no iproute2: storms share the host's socket table (noisier)"
if ((warmup)); then
  # Caches, page tables and CPU clocks settle before the first measured run.
  mkdir -p "$tmp/warmup"
  run_storm "$tmp/warmup" || die "warm-up storm failed: $(tail -n 3 "$tmp/warmup/storm.err")"
  log "warm-up: $(cat "$tmp/warmup/storm.json")"
fi

n=${#modes[@]}
for ((r = 1; r <= rounds; r++)); do
  for ((i = 0; i < n; i++)); do
    wait_idle
    run_one "${modes[(i + r - 1) % n]}" "$r"
  done
done

echo
python3 "$util" report "$results"
