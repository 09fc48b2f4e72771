#!/bin/bash
# Build the nested-guest test image: Debian's own kernel + a busybox initramfs
# carrying the block/fabric client modules and fio, nvme-cli, nbd-client, e2fsprogs,
# and soft-RoCE (rdma_rxe, nvme-rdma, nvmet-rdma, the rxe verbs provider, perftest).
#
#   build.sh [6.1|bpo]   # idempotent, ~10 s once the .debs are cached
#     6.1  (default) Debian 12 kernel, package linux-image-amd64 -> 6.1.0-NN-amd64
#     bpo  bookworm-backports kernel (6.12.x): has ublk_drv, which 6.1 lacks;
#          fetched with a private apt config under $G/apt (host sources untouched)
#
# Outputs: $G/img/<flavor>/{vmlinuz,vmlinux,initramfs.img,KVER,modules.missing}
#   vmlinux = the ELF kernel pulled out of vmlinuz; QEMU boots it through its PVH
#   entry point, skipping the BIOS real-mode setup and the in-guest xz unpack (~2 s less under TCG)
# Env: NVLEND_GUEST_DIR=/var/tmp/nvlend-guest  KPKG=<exact linux-image package>  COMPRESS=lz4(default)|zstd|gzip|none
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
G=${NVLEND_GUEST_DIR:-/var/tmp/nvlend-guest}; mkdir -p "$G"
FLAVOR=${1:-6.1}
cd "$G"
COMPRESS=${COMPRESS:-lz4}
OUTD=$G/img/$FLAVOR
mkdir -p "$OUTD"

need_pkgs="qemu-system-x86 qemu-utils busybox-static nbdkit nbd-client fio nvme-cli cpio kmod xz-utils e2fsprogs
           iproute2 ibverbs-providers ibverbs-utils perftest"
missing=""
for p in $need_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "[build] apt-get install$missing"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

APTO=()
if [ "$FLAVOR" = bpo ]; then
  mkdir -p "$G/apt/lists/partial" "$G/apt/cache/archives/partial"
  # the backports suite from the same Debian mirror this machine's apt already uses
  # (comment lines skipped: deb822 files often carry a commented snapshot URL
  # first; `|| true`: a missing sources.list must not end the script under pipefail)
  MIRROR=$({ grep -rhvE '^[[:space:]]*#' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -1 || true)
  [ -n "$MIRROR" ] || { echo "[build] no Debian mirror found in apt sources" >&2; exit 1; }
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main" > "$G/apt/sources.list"
  APTO=(-o Dir::Etc::SourceList="$G/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$G/apt/lists" -o Dir::Cache="$G/apt/cache" -o APT::Sandbox::User=root)
  ls "$G"/apt/lists/*_Packages >/dev/null 2>&1 || apt-get "${APTO[@]}" update -q >/dev/null
fi

# ---- kernel -----------------------------------------------------------------
if [ -z "${KPKG:-}" ]; then
  if [ "$FLAVOR" = bpo ]; then
    KPKG=$(apt-cache "${APTO[@]}" depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  else
    [ -n "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null)" ] || apt-get update -q
    KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  fi
fi
[ -n "$KPKG" ] || { echo "cannot resolve kernel package" >&2; exit 1; }
mkdir -p dl
if ! ls dl/${KPKG}_*.deb >/dev/null 2>&1; then
  (cd dl && apt-get "${APTO[@]}" download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
fi
DEB=$(ls dl/${KPKG}_*.deb | head -1)
KROOT=$G/kroot-$KPKG
if [ ! -d "$KROOT/boot" ]; then
  rm -rf "$KROOT.tmp"; mkdir -p "$KROOT.tmp"; dpkg -x "$DEB" "$KROOT.tmp"; mv "$KROOT.tmp" "$KROOT"
fi
KVER=$(ls "$KROOT/lib/modules" | head -1)
# every image file is written beside and renamed into place: a test of
# another worktree may be booting this image right now (a half-written
# kernel or initramfs panics before guest-init)
cp "$KROOT"/boot/vmlinuz-"$KVER" "$OUTD/vmlinuz.tmp" && mv "$OUTD/vmlinuz.tmp" "$OUTD/vmlinuz"
echo "$KVER" > "$OUTD/KVER"
python3 - "$OUTD/vmlinuz" "$OUTD/vmlinux" <<'PYEOF'
import os, subprocess, sys
d = open(sys.argv[1], 'rb').read()
for magic, cmd in ((b'\xfd7zXZ\x00', ['xz', '-dc']), (b'\x28\xb5\x2f\xfd', ['zstd', '-dc']), (b'\x1f\x8b\x08', ['gzip', '-dc'])):
    i = d.find(magic)
    while i >= 0:
        p = subprocess.run(cmd, input=d[i:], capture_output=True)
        if p.stdout[:4] == b'\x7fELF':
            open(sys.argv[2] + '.tmp', 'wb').write(p.stdout)
            os.rename(sys.argv[2] + '.tmp', sys.argv[2]); sys.exit(0)
        i = d.find(magic, i + 1)
print('[build] could not extract vmlinux; run-in-guest.sh will boot vmlinuz', file=sys.stderr)
PYEOF
[ -f "$KROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$KROOT" "$KVER"

# ---- rootfs -----------------------------------------------------------------
R=$OUTD/rootfs
rm -rf "$R"; mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,root,host,lib64,usr/bin,usr/sbin,lib/modules}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list-full); do
  [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done

MODS="virtio_pci virtio_net virtio_blk virtio_console nvme-tcp nvme-fabrics nvme-core nbd ext4
      crc32c_intel crc32c_generic libcrc32c loop 9p 9pnet_virtio null_blk ublk_drv
      nvmet nvmet-tcp
      crc32_generic crc32_pclmul rdma_rxe ib_uverbs rdma_ucm nvme-rdma nvmet-rdma"
# soft-RoCE (RDMA tests): rdma_rxe fails to load without crc32_generic
# ("failed to init crc32 algorithm err:-2"): modprobe that first
# NVMe in-band authentication (DH-HMAC-CHAP) on the host side: bpo's 6.12 has
# CONFIG_NVME_HOST_AUTH with these two as modules (nvme-core/-fabrics depend
# on them; hmac, sha2 and the ffdhe groups are built in). 6.1 has neither:
# they land in modules.missing there.
[ "$FLAVOR" = bpo ] && MODS="$MODS nvme-auth nvme-keyring"
: > "$OUTD/modules.missing"
for m in $MODS; do
  if ! deps=$(modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null); then
    echo "$m" >> "$OUTD/modules.missing"; continue
  fi
  echo "$deps" | awk '$1=="insmod"{print $2}' | while read -r ko; do
    rel=${ko#$KROOT}
    mkdir -p "$R/$(dirname "$rel")"
    case $ko in
      *.ko.xz)  [ -e "$R/${rel%.xz}" ]  || xz -dc "$ko" > "$R/${rel%.xz}" ;;
      *.ko.zst) [ -e "$R/${rel%.zst}" ] || zstd -qdc "$ko" > "$R/${rel%.zst}" ;;
      *)        [ -e "$R/$rel" ] || cp "$ko" "$R/$rel" ;;
    esac
  done
done
cp "$KROOT/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$R" "$KVER"
[ ! -s "$OUTD/modules.missing" ] || echo "[build] modules not in $KPKG: $(tr '\n' ' ' < "$OUTD/modules.missing")"

BINS="/usr/bin/rdma /usr/bin/ibv_devinfo /usr/bin/ib_write_bw /usr/bin/ib_read_lat
      /usr/bin/fio /usr/sbin/nvme /usr/sbin/nbd-client /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/blkdiscard"
copy_with_libs() {
  local b=$1
  mkdir -p "$R/$(dirname "$b")"; cp -L "$b" "$R/$b"
  ldd "$b" | awk '/=>/{print $3} /^\t\/lib/{print $1}' | grep '^/' | while read -r l; do
    [ -e "$R/$l" ] || { mkdir -p "$R/$(dirname "$l")"; cp -L "$l" "$R/$l"; }
  done
}
for b in $BINS; do [ -x "$b" ] && copy_with_libs "$b"; done
# libraries nvlend's own binaries need when run from the 9p share (/host)
for l in liburing.so.2 libjansson.so.4 libfuse3.so.3 libnbd.so.0 libsystemd.so.0 libcrypto.so.3 \
         libibverbs.so.1 librdmacm.so.1; do
  for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
    if [ -e "$d/$l" ]; then
      mkdir -p "$R$d"; cp -L "$d/$l" "$R$d/$l"
      ldd "$d/$l" | awk '/=>/{print $3}' | grep '^/' | while read -r dep; do
        [ -e "$R/$dep" ] || { mkdir -p "$R/$(dirname "$dep")"; cp -L "$dep" "$R/$dep"; }
      done
      break
    fi
  done
done
[ -x /usr/bin/fusermount3 ] && copy_with_libs /usr/bin/fusermount3
# soft-RoCE: the rxe verbs provider and its driver file, so libibverbs in the
# guest finds rxe0 (the RDMA tests run nvlendd, ib_write_bw... over it)
mkdir -p "$R/usr/lib/x86_64-linux-gnu/libibverbs" "$R/etc/libibverbs.d"
cp -L /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so "$R/usr/lib/x86_64-linux-gnu/libibverbs/"
cp /etc/libibverbs.d/rxe.driver "$R/etc/libibverbs.d/"
ln -sf /usr/sbin/mke2fs "$R/usr/sbin/mkfs.ext4"
ln -sf /usr/sbin/e2fsck "$R/usr/sbin/fsck.ext4"
mkdir -p "$R/lib/x86_64-linux-gnu" "$R/usr/lib/x86_64-linux-gnu"
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$R/etc/"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
echo "127.0.0.1 localhost" > "$R/etc/hosts"
echo "10.0.2.2 host" >> "$R/etc/hosts"
# nvme-cli wants a host NQN; make a fixed one so 'nvme connect' works without args
mkdir -p "$R/etc/nvme"
echo "nqn.2014-08.org.nvmexpress:uuid:11111111-2222-3333-4444-555555555555" > "$R/etc/nvme/hostnqn"
echo "11111111-2222-3333-4444-555555555555" > "$R/etc/nvme/hostid"

cp "$HERE/guest-init.sh" "$R/init"; chmod 755 "$R/init"

# ---- pack --------------------------------------------------------------------
( cd "$R" && find . -print0 | cpio --null -o -H newc --quiet ) > "$OUTD/initramfs.cpio.tmp"
case $COMPRESS in
  gzip) gzip -1 -c "$OUTD/initramfs.cpio.tmp" > "$OUTD/initramfs.img.tmp" ;;
  zstd) zstd -q -T0 -3 -c "$OUTD/initramfs.cpio.tmp" > "$OUTD/initramfs.img.tmp" ;;
  lz4)  lz4 -q -l -9 -c "$OUTD/initramfs.cpio.tmp" > "$OUTD/initramfs.img.tmp" ;;
  none) cp "$OUTD/initramfs.cpio.tmp" "$OUTD/initramfs.img.tmp" ;;
esac
mv "$OUTD/initramfs.img.tmp" "$OUTD/initramfs.img"
rm -f "$OUTD/initramfs.cpio.tmp"
echo "[build] kernel $KVER  rootfs $(du -sh "$R" | cut -f1)  initramfs $(du -h "$OUTD/initramfs.img" | cut -f1) ($COMPRESS)"
