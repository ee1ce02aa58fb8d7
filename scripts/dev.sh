#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine, as root:
#   scripts/dev.sh run [tcptrail options]   install what is missing, build, run tcptrail
#   scripts/dev.sh test                     install what is missing, build, run every test
#   scripts/dev.sh build                    install what is missing, build
#   scripts/dev.sh vm-test [KERNEL...]      build, run the kernel tests under qemu on Debian kernels
#                                           (default: the newest 6.1 and 6.12); under CI, test does too
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

# Build and test dependencies (Debian 12 package names); iproute2/iptables/procps drive the
# kernel tests' network namespaces and lossy links; libbpf-tools is the benchmark's baseline.
PACKAGES=(build-essential cmake pkg-config clang clang-format llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  iproute2 iptables procps python3)
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
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
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
  test)
    install_dependencies
    build
    # Unit tests first (fast, no root); kernel tests run serially against the real kernel.
    ctest --test-dir "$BUILD_DIR" --output-on-failure -L unit -j"$(nproc)"
    ctest --test-dir "$BUILD_DIR" --output-on-failure -L kernel
    if [[ ${CI:-} == true ]]; then
      install_dependencies "${VM_PACKAGES[@]}"
      scripts/vm-test.sh "$BUILD_DIR"
    fi
    ;;
  vm-test)
    install_dependencies "${VM_PACKAGES[@]}"
    build
    scripts/vm-test.sh "$BUILD_DIR" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh run [tcptrail options] | test | build | vm-test [KERNEL...]" >&2
    exit 2
    ;;
esac
