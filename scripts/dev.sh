#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine, as root:
#   scripts/dev.sh run [tcptrail options]   install what is missing, build, run tcptrail
#   scripts/dev.sh test                     install what is missing, build, run every test
#   scripts/dev.sh test --sanitize          the same in build-asan (ASan + UBSan, UB fails)
#   scripts/dev.sh test --tsan              the same in build-tsan (ThreadSanitizer)
#   scripts/dev.sh build                    install what is missing, build
#   scripts/dev.sh package                  build, then the Debian package (CPack) in build/dist
#   scripts/dev.sh fuzz [SECONDS]           build the libFuzzer targets (build-fuzz, clang) and
#                                           run each for SECONDS (default 30); fails on a crash
#   scripts/dev.sh tidy                     clang-tidy over userspace/, tests/, bench/ and the
#                                           fuzz targets with .clang-tidy; fails on any warning
#   scripts/dev.sh vm-test [KERNEL...]      build, run the kernel tests under qemu on Debian kernels
#                                           (default: the newest 6.1 and 6.12)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# Build and test dependencies (Debian 12 package names); iproute2/iptables/procps drive the
# kernel tests' network namespaces and lossy links; prometheus scrapes --metrics in a kernel
# test (and gives promtool), nginx is the pre-fork server of the owner test; libbpf-tools is
# the benchmark's baseline.
# libclang-rt-14-dev holds libFuzzer and clang's sanitizer runtimes (gcc's come with gcc);
# clang-tidy is for `tidy`. The package test installs the .deb and checks it with man-db,
# systemd-analyze (systemd), logrotate and setpriv (util-linux); deploy_test reads YAML.
# nettle-dev gives SHA-1 and base64 for the Community ID.
PACKAGES=(build-essential cmake pkg-config clang clang-format clang-tidy libclang-rt-14-dev
  libbpf-dev bpftool libelf-dev zlib1g-dev nettle-dev libcli11-dev nlohmann-json3-dev libgtest-dev
  libbenchmark-dev libcpp-httplib-dev iproute2 iptables procps python3 python3-yaml man-db
  systemd logrotate prometheus nginx-light)
FUZZERS=(decode json_writer sock_diag cpu_list port_range proc_link duration cidr options)
# The kernel matrix: qemu (TCG), a static busybox for the guest's init, depmod/modprobe.
VM_PACKAGES=(qemu-system-x86 busybox-static kmod xz-utils)

install_dependencies() {
  local missing=()
  for pkg in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "dev.sh: missing packages (${missing[*]}); run as root to install them" >&2
      exit 1
    fi
    echo "dev.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The servers the tests run (nginx, Prometheus) are started by the tests themselves, on
    # ports of their own: keep their packages from starting the system services on install.
    local no_start=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      no_start=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$no_start" && chmod +x "$no_start"
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # An `if`, not `&&`: as the function's last command a false test would fail the script.
    if [[ -n $no_start ]]; then rm -f "$no_start"; fi
  fi
}

# Configure output goes to stderr so that `run` keeps stdout for records; it carries the
# compiler, clang, bpftool, libbpf and kernel versions into the CI log.
build() {
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

run_tests() {
  # Unit tests first (fast, no root); kernel tests run serially against the real kernel.
  ctest --test-dir "$BUILD_DIR" --output-on-failure -L unit -j"$(nproc)"
  ctest --test-dir "$BUILD_DIR" --output-on-failure -L kernel
}

# The Debian package of BUILD_DIR, in BUILD_DIR/dist; prints its path.
package() {
  cpack --config "$BUILD_DIR/CPackConfig.cmake" -B "$BUILD_DIR/dist" >&2
  ls "$BUILD_DIR"/dist/*.deb
}

fuzz() {
  local seconds=${1:-30}
  BUILD_DIR=build-fuzz
  CC=clang CXX=clang++ build -DTCPTRAIL_FUZZ=ON
  local failed=()
  for name in "${FUZZERS[@]}"; do
    # New inputs go to a scratch corpus; the checked-in seeds are only read. A crash leaves
    # its input in build-fuzz/artifacts/ for the regression test.
    local work=$BUILD_DIR/corpus/$name
    mkdir -p "$work" "$BUILD_DIR/artifacts"
    echo "dev.sh: fuzzing $name for ${seconds}s" >&2
    if ! "$BUILD_DIR/tests/fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/${name}-" \
      "$work" "tests/fuzz/corpus/$name" 2>"$BUILD_DIR/$name.log"; then
      tail -n 60 "$BUILD_DIR/$name.log" >&2
      failed+=("$name")
    fi
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units)" "$BUILD_DIR/$name.log" >&2 || true
  done
  if ((${#failed[@]})); then
    echo "dev.sh: fuzzers failed: ${failed[*]} (inputs in $BUILD_DIR/artifacts)" >&2
    exit 1
  fi
}

# clang-tidy-14 with .clang-tidy over userspace/, tests/ and bench/ (build/compile_commands.json)
# and the fuzz targets (build-fuzz's, configured here if missing); fails on any warning.
# One queue over both databases, nproc files at a time, the largest first so that no long file
# starts last; each file's output goes to a file of its own, so parallel output cannot interleave.
tidy() {
  [[ -f $BUILD_DIR/compile_commands.json ]] || build >/dev/null
  [[ -f build-fuzz/compile_commands.json ]] ||
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DTCPTRAIL_FUZZ=ON >/dev/null
  local log=$BUILD_DIR/clang-tidy.log out=$BUILD_DIR/clang-tidy status=0 start=$SECONDS
  rm -rf "$out" && mkdir -p "$out"
  local files file db
  # Not tests/layering/probe.cpp: the layering tests compile it once per probe with the header
  # in a macro, and most probes are meant not to compile.
  mapfile -t files < <(find userspace tests bench -name '*.cpp' -not -path 'tests/layering/*' \
    -printf '%s %p\n' | sort -k1,1nr -k2 | cut -d' ' -f2)
  # shellcheck disable=SC2016  # $0 $1 $2 are sh -c's arguments
  for file in "${files[@]}"; do
    db=$BUILD_DIR
    if [[ $file == tests/fuzz/* ]]; then db=build-fuzz; fi
    printf '%s\0' "$db" "$file" "$out/${file//\//_}.log"
  done | xargs -0 -n 3 -P "$(nproc)" sh -c 'exec clang-tidy-14 --quiet -p "$0" "$1" >"$2" 2>&1' ||
    status=1
  cat "$out"/*.log >"$log"
  # An analyzer report is kept when its path runs through our code even if it ends in a header
  # the filter excludes: the ones ending in bpftool's generated skeletons (*.skel.h) are not ours.
  # Our headers reached through build/userspace/layers/<layer>/<layer> are named by their source.
  local warnings
  warnings=$(grep -E "^/[^:]+:[0-9]+:[0-9]+: (warning|error): " "$log" |
    grep -vE "\.skel\.h:[0-9]+:[0-9]+: warning: " |
    sed -E "s|^$PWD/||; s|^build[^/]*/userspace/layers/[^/]+/|userspace/|" | sort -u || true)
  local took
  took="${#files[@]} files in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
  if [[ -n $warnings || $status != 0 ]]; then
    echo "$warnings" >&2
    echo "dev.sh: clang-tidy: $(grep -c . <<<"$warnings") warnings, exit $status, $took (full" \
      "output in $log)" >&2
    exit 1
  fi
  echo "dev.sh: clang-tidy: clean, $took" >&2
}

cmd=${1:-run}
shift || true
case "$cmd" in
  run)
    install_dependencies
    build >&2
    exec "$BUILD_DIR/tcptrail" "$@"
    ;;
  build)
    install_dependencies
    build
    ;;
  package)
    install_dependencies
    build >&2
    package
    ;;
  test)
    install_dependencies
    case "${1:-}" in
      --sanitize)
        BUILD_DIR=build-asan
        build -DTCPTRAIL_SANITIZE=address -DTCPTRAIL_BUILD_BENCH=OFF
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        ;;
      --tsan)
        BUILD_DIR=build-tsan
        build -DTCPTRAIL_SANITIZE=thread -DTCPTRAIL_BUILD_BENCH=OFF
        export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
        ;;
      "")
        build
        with_package=1
        ;;
      *)
        echo "usage: scripts/dev.sh test [--sanitize | --tsan]" >&2
        exit 2
        ;;
    esac
    run_tests
    # Installs and purges the package built from this tree; not for the sanitizer builds.
    if [[ -n ${with_package:-} ]]; then
      ctest --test-dir "$BUILD_DIR" --output-on-failure -L package
    fi
    ;;
  fuzz)
    install_dependencies
    fuzz "$@"
    ;;
  tidy)
    install_dependencies
    tidy
    ;;
  vm-test)
    install_dependencies "${VM_PACKAGES[@]}"
    build
    scripts/vm-test.sh "$BUILD_DIR" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh run [tcptrail options] | test [--sanitize | --tsan] | build |" \
      "package |" \
      "fuzz [SECONDS] | tidy | vm-test [KERNEL...]" >&2
    exit 2
    ;;
esac
