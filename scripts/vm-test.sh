#!/usr/bin/env bash
# Runs the kernel test suite inside qemu (TCG) on Debian kernels taken from their packages:
#   scripts/vm-test.sh BUILD_DIR [KERNEL...]   KERNEL: a linux-image package version, e.g. 6.1.0-57-amd64
# With no KERNEL: the newest 6.1 and 6.12 Debian 12 ships. The guest shares the host's root read-only
# over 9p under a tmpfs overlay, so the host's build and libraries run unchanged at the same paths.
set -euo pipefail

build_dir=$(realpath "$1")
shift
cache="$build_dir/vm"
guest_timeout=${VM_TEST_TIMEOUT:-900}

newest() {
  apt-cache search --names-only "$1" | cut -d' ' -f1 | sed 's/^linux-image-//' | sort -V | tail -1
}

fetch_kernel() {
  local version=$1 root="$cache/$1"
  [[ -f $root/boot/vmlinuz-$version ]] && return
  mkdir -p "$cache/deb"
  (cd "$cache/deb" && apt-get download -q "linux-image-$version" >/dev/null 2>&1) ||
    { echo "vm-test: cannot download linux-image-$version" >&2; exit 1; }
  dpkg-deb -x "$cache"/deb/linux-image-"$version"_*.deb "$root.tmp"
  depmod -b "$root.tmp" "$version"
  mv "$root.tmp" "$root"
}

# The initramfs: static busybox, the modules 9p and overlayfs need, and an init that mounts the
# host's root and chroots into it.
make_initramfs() {
  local version=$1 root="$cache/$1" dir="$cache/$1/initramfs"
  [[ -f $root/initramfs.cpio.gz ]] && return
  rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/mods"
  cp /bin/busybox "$dir/bin/busybox"
  local n=0 ko
  for ko in $(modprobe -d "$root" -S "$version" --show-depends -a 9pnet_virtio 9p overlay virtio_pci |
    awk '$1 == "insmod" {print $2}'); do
    n=$((n + 1))
    case $ko in
      *.xz) xz -dc "$ko" >"$dir/mods/$(printf %02d $n).ko" ;;
      *) cp "$ko" "$dir/mods/$(printf %02d $n).ko" ;;
    esac
  done
  cat >"$dir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc 2>/dev/null || { mkdir /proc; mount -t proc proc /proc; }
mkdir -p /sys /dev /lower /rw /newroot && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod "$m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose hostroot /lower
mount -t tmpfs tmpfs /rw && mkdir /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
mkdir -p /newroot/vmout && mount -t 9p -o trans=virtio,version=9p2000.L out /newroot/vmout
mount -t proc proc /newroot/proc && mount -t sysfs sys /newroot/sys && mount -t devtmpfs dev /newroot/dev
exec chroot /newroot /bin/sh /vmout/guest.sh
INIT
  chmod +x "$dir/init"
  (cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$root/initramfs.cpio.gz"
}

run_kernel() {
  local version=$1 root="$cache/$1" out="$cache/$1/out"
  rm -rf "$out" && mkdir -p "$out"
  cat >"$out/guest.sh" <<GUEST
set -u
# /tmp stays the overlay's (writable already): a tmpfs there would hide a build under /tmp.
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf; mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug; mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /lib/modules/$version && mount --bind $root/lib/modules/$version /lib/modules/$version
ip link set lo up
cd $build_dir 2>/vmout/log && CI=true timeout $((guest_timeout - 60)) tests/tcptrail_kernel_tests \
  ${VM_TEST_FILTER:+--gtest_filter=$VM_TEST_FILTER} >/vmout/log 2>&1
echo \$? >/vmout/status
sync; echo o >/proc/sysrq-trigger
GUEST
  local start=$SECONDS
  timeout "$guest_timeout" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 2 -m 3G \
    -kernel "$root/boot/vmlinuz-$version" -initrd "$root/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet" -no-reboot -nographic -monitor none \
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
    -virtfs local,path="$out",mount_tag=out,security_model=passthrough >"$out/console" 2>&1 || true
  local status
  status=$(cat "$out/status" 2>/dev/null || echo "no status (guest hung or crashed; see $out/console)")
  echo "vm-test: $version: exit $status in $((SECONDS - start)) s; log $out/log" >&2
  grep -E '^\[  (PASSED|FAILED) ' "$out/log" >&2 || true
  [[ $status == 0 ]] && return
  # The CI log must explain the failure: each failed test's output, and that of a test the
  # guest never finished (a hang or a crash), then the end of the console.
  awk '/^\[ RUN      \]/ { test = $0 "\n"; running = 1; next }
       running { test = test $0 "\n" }
       /^\[ +(OK|SKIPPED) \]/ { running = 0 }
       /^\[  FAILED  \]/ && running { printf "%s", test; running = 0 }
       END { if (running) printf "%s(unfinished)\n", test }' "$out/log" >&2
  tail -n 20 "$out/console" >&2
  return 1
}

kernels=("$@")
if ((${#kernels[@]} == 0)); then
  kernels=("$(newest '^linux-image-6\.1\.0-[0-9]+-amd64$')" "$(newest '^linux-image-6\.12\.[0-9]+\+deb12-amd64$')")
fi
failed=()
for k in "${kernels[@]}"; do
  fetch_kernel "$k"
  make_initramfs "$k"
  if run_kernel "$k"; then
    continue
  fi
  # TCG emulates the two CPUs, and a guest can trap on an int3 of the kernel's own live code
  # patching (text_poke_bp, as tracepoints are switched on and off with each tracer) after its
  # handler stopped claiming it: "Oops: int3" in kernel text, seen once in ~10 runs, a crash of
  # the emulated patching rather than of the programs. Once more for that only; any other
  # failure, or the same one twice, fails.
  if grep -q "Oops: int3" "$cache/$k/out/console"; then
    cp "$cache/$k/out/console" "$cache/$k/console.int3"
    echo "vm-test: $k: the guest oopsed on an int3 of its own code patching" \
      "($cache/$k/console.int3); running it once more" >&2
    run_kernel "$k" || failed+=("$k")
  else
    failed+=("$k")
  fi
done
if ((${#failed[@]})); then
  echo "vm-test: failed on ${failed[*]}" >&2
  exit 1
fi
