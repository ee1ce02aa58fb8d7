#!/usr/bin/env bash
# Builds the Debian package from BUILD_DIR, installs it, checks what it installed (files, the
# binary, the man page, the unit offline, the unit's capability set against the kernel with a
# rotation by the logrotate file), then removes and purges it and checks that nothing is left.
# The package is purged on every exit path, so the machine is as it was.
# usage: package_test.sh BUILD_DIR SOURCE_DIR
# Needs root (dpkg -i, BPF). Without root it skips (exit 77), or fails when CI is set.
set -euo pipefail
build_dir=$(realpath "$1") source_dir=$(realpath "$2")
package=tcptrail

fail() {
  echo "package_test: FAIL: $*" >&2
  exit 1
}
if [[ $(id -u) -ne 0 ]]; then
  [[ -n ${CI:-} ]] && fail "needs root (dpkg -i, BPF), and CI is set"
  echo "package_test: skipped: needs root (dpkg -i, BPF)" >&2
  exit 77
fi
# Never touch an operator's own installation or records.
if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "installed\|config-files"; then
  fail "$package is already installed here; remove it first (dpkg --purge $package)"
fi
[[ ! -e /var/log/tcptrail ]] || fail "/var/log/tcptrail exists; this test would purge it"

work=$(mktemp -d /tmp/tcptrail-package.XXXXXX)
cleanup() {
  if dpkg-query -W "$package" >/dev/null 2>&1; then
    dpkg --purge "$package" >/dev/null 2>&1 || echo "package_test: could not purge $package" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "package_test: building the package"
cpack --config "$build_dir/CPackConfig.cmake" -B "$work/dist" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$work"/dist/*.deb)
version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)
echo "package_test: $(basename "$deb"), Depends: $depends"
# libelf1 and zlib1g are libbpf1's own dependencies; the binary links libbpf, cpp-httplib
# (--metrics) and nettle (community_id).
depends_names=$(tr ',' '\n' <<<"$depends" | awk '{print $1}')
for lib in libbpf1 libcpp-httplib0.11 libnettle8 libc6 libstdc++6; do
  grep -qxF "$lib" <<<"$depends_names" || fail "Depends lacks $lib: $depends"
done
dpkg-deb -I "$deb" conffiles >"$work/conffiles"
diff <(sort "$work/conffiles") <(printf '%s\n' /etc/default/tcptrail /etc/logrotate.d/tcptrail) ||
  fail "conffiles differ"
# Every regular file the package ships, to check their removal later.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print substr($6, 2)}' >"$work/files"

dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }

expected=(/usr/sbin/tcptrail /usr/share/man/man8/tcptrail.8.gz
  /usr/share/tcptrail/records.schema.json /lib/systemd/system/tcptrail.service
  /etc/default/tcptrail /etc/logrotate.d/tcptrail)
diff <(sort "$work/files") <(printf '%s\n' "${expected[@]}" | sort) ||
  fail "the package's files differ from the expected list"
[[ $(stat -c '%a %U' /usr/sbin/tcptrail) == "755 root" ]] || fail "/usr/sbin/tcptrail mode/owner"
cmp -s /usr/share/tcptrail/records.schema.json "$source_dir/docs/records.schema.json" ||
  fail "installed schema differs from docs/records.schema.json"
if readelf -S /usr/sbin/tcptrail | grep -q '\.symtab'; then fail "/usr/sbin/tcptrail is not stripped"; fi

out=$(/usr/sbin/tcptrail --version) || fail "/usr/sbin/tcptrail --version failed"
[[ $out == "tcptrail $version" ]] || fail "--version says '$out', the package is $version"

# man-db finds the page by name and renders it without warnings.
[[ $(man -w 8 tcptrail) == /usr/share/man/man8/tcptrail.8.gz ]] || fail "man -w 8 tcptrail"
warnings=$(MANWIDTH=80 man --warnings 8 tcptrail 2>&1 >/dev/null)
[[ -z $warnings ]] || fail "man page warnings: $warnings"

# Offline: PID 1 need not be systemd. verify also checks ExecStart's binary and the man page
# that Documentation= names.
verify=$(systemd-analyze verify /lib/systemd/system/tcptrail.service 2>&1) ||
  fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify warns: $verify"
# The exposure score (0-100; 28 shown as 2.8) may not grow: a loosened unit fails here.
security=$(systemd-analyze security --offline=yes --threshold=28 --no-pager \
  /lib/systemd/system/tcptrail.service 2>&1) || fail "exposure grew: $(tail -n 1 <<<"$security")"
echo "package_test: systemd-analyze security: $(tail -n 1 <<<"$security")"

logrotate --debug --state "$work/logrotate.state" /etc/logrotate.d/tcptrail >"$work/logrotate.log" 2>&1 ||
  { cat "$work/logrotate.log" >&2; fail "logrotate rejects /etc/logrotate.d/tcptrail"; }
if grep -qi "error" "$work/logrotate.log"; then
  cat "$work/logrotate.log" >&2
  fail "logrotate reports an error"
fi

# The service's run, as far as it goes without systemd: the unprivileged user with the unit's
# capabilities, -o into a logs directory of its own, and a rotation by the installed logrotate
# file halfway (its path and its systemctl signal replaced by this directory and a kill).
# The programs load, no feature is degraded, each file holds whole records, and a loopback
# connection before and one after the rotation are traced from both ends.
caps=$(sed -n 's/^AmbientCapabilities=//p' /lib/systemd/system/tcptrail.service)
bounding=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/tcptrail.service)
[[ -n $caps && $caps == "$bounding" ]] || fail "AmbientCapabilities '$caps' vs bounding '$bounding'"
set_spec=$(for cap in $caps; do printf '+%s,' "${cap#CAP_}"; done | tr 'A-Z' 'a-z')
set_spec=${set_spec%,}
logs=$work/logs
install -d -m 0750 -o nobody -g nogroup "$logs"
echo "package_test: running /usr/sbin/tcptrail as nobody with $set_spec"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="-all,$set_spec" \
  --ambient-caps="-all,$set_spec" --bounding-set="-all,$set_spec" --no-new-privs \
  /usr/sbin/tcptrail --json -o "$logs/tcptrail.ndjson" -d 4 2>"$work/trace.err" &
tracer=$!
# The file is opened, and the start record written, once the programs are attached.
for _ in $(seq 50); do
  [[ -s $logs/tcptrail.ndjson ]] && break
  sleep 0.1
done
# A loopback connection with data; prints its server port.
connect() {
  python3 - <<'PY'
import socket
server = socket.create_server(("127.0.0.1", 0))
port = server.getsockname()[1]
client = socket.create_connection(("127.0.0.1", port))
peer, _ = server.accept()
client.sendall(b"tcptrail package test")
peer.recv(64)
client.close()
peer.close()
server.close()
print(port)
PY
}
before=$(connect)
sleep 0.5 # records reach the file within 100 ms
sed -e "s|^/var/log/tcptrail/\*\.ndjson|$logs/*.ndjson|" \
  -e "s|^\t\tif \[ -d /run/systemd/system \].*|\t\tkill -HUP $tracer|" \
  /etc/logrotate.d/tcptrail >"$work/logrotate.conf"
grep -q "kill -HUP $tracer" "$work/logrotate.conf" || fail "logrotate file: no postrotate line"
logrotate --force --state "$work/logrotate.state" "$work/logrotate.conf" >"$work/logrotate.log" 2>&1 ||
  { cat "$work/logrotate.log" >&2; fail "logrotate failed"; }
[[ -s $logs/tcptrail.ndjson.1 ]] || fail "logrotate did not rotate $logs/tcptrail.ndjson"
for _ in $(seq 50); do
  [[ -e $logs/tcptrail.ndjson ]] && break
  sleep 0.1
done
after=$(connect)
wait "$tracer" || { cat "$work/trace.err" >&2; fail "tcptrail under the unit's capabilities failed"; }
[[ ! -s $work/trace.err ]] || { cat "$work/trace.err" >&2; fail "tcptrail warned on stderr"; }
[[ $(stat -c '%a %U' "$logs/tcptrail.ndjson") == "600 nobody" ]] || fail "reopened file's mode/owner"
python3 - "$logs/tcptrail.ndjson.1" "$logs/tcptrail.ndjson" "$before" "$after" <<'PY' ||
import json, sys
def records(path):
    return [json.loads(line) for line in open(path)]  # a split line does not parse
def both_ends(records, port):
    return [r for r in records if r["type"] == "connection" and port in (r["lport"], r["rport"])
            and r["tx_bytes"] + r["rx_bytes"] > 0]
old, new = records(sys.argv[1]), records(sys.argv[2])
before, after = int(sys.argv[3]), int(sys.argv[4])
assert old[0]["type"] == "start" and old[0]["degraded"] == [], old[0]
assert len(both_ends(old, before)) == 2, f"connection before the rotation: {old}"
assert not both_ends(new, before), "a record before the rotation is repeated after it"
assert len(both_ends(new, after)) == 2, f"connection after the rotation: {new}"
assert not both_ends(old, after), "a record after the rotation is in the old file"
assert new[-1]["type"] == "stop", new[-1]
PY
  fail "records under the unit's capabilities across a rotation"

dpkg -r "$package" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r failed"; }
[[ $(dpkg-query -W -f='${Status}' "$package") == *config-files ]] || fail "not config-files after -r"
while read -r path; do
  case $path in
    /etc/*) [[ -e $path ]] || fail "conffile $path removed by dpkg -r (only --purge should)" ;;
    *) [[ ! -e $path ]] || fail "$path left after dpkg -r" ;;
  esac
done <"$work/files"

# Purge also removes the records the service wrote.
mkdir -p /var/log/tcptrail && echo '{}' >/var/log/tcptrail/tcptrail.ndjson
dpkg --purge "$package" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "purge failed"; }
! dpkg-query -W "$package" >/dev/null 2>&1 || fail "dpkg still knows $package after --purge"
while read -r path; do
  [[ ! -e $path ]] || fail "$path left after --purge"
done <"$work/files"
for dir in /usr/share/tcptrail /var/log/tcptrail; do
  [[ ! -e $dir ]] || fail "$dir left after --purge"
done
echo "package_test: OK ($(wc -l <"$work/files") files installed, removed and purged)"
