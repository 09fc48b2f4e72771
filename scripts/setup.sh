#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Install the Debian packages nvlend needs to build, test and benchmark.
# Idempotent and non-interactive; returns in well under a second when
# everything is already installed (one dpkg-query, no apt call).
#
#   scripts/setup.sh            build + test dependencies (what make needs)
#   scripts/setup.sh --check    only report what is missing (exit 1 if any)
set -euo pipefail

PKGS=(
	# toolchain (python3: the man page generator and test scripts)
	gcc make pkg-config clang libclang-rt-14-dev llvm python3
	# libraries the code links with
	liburing-dev libjansson-dev libfuse3-dev fuse3 libnbd-dev libsystemd-dev
	libssl-dev     # OpenSSL: DH-HMAC-CHAP (src/proto/nvme_auth.c)
	libibverbs-dev librdmacm-dev   # rdma-core: NVMe/RDMA, the brick over RDMA
	# unit tests
	libcmocka-dev valgrind
	# static analysis stage of make check (scripts/static_analysis.sh)
	cppcheck
	# real peers and tools the functional tests and benchmarks drive
	socat fio nvme-cli nbdkit nbd-client libnbd-bin python3-libnbd
	qemu-utils qemu-system-x86 e2fsprogs util-linux iproute2 iperf3
	procps psmisc kmod
	# mDNS advertisement of lenders (tests/functional/lend_mdns.sh; not started:
	# the test runs its own avahi-daemon in a network namespace)
	avahi-daemon
	# manual pages: lint and render (tests/functional/docs_man.sh)
	mandoc man-db
	# Debian packages: make deb, lintian (tests/functional/packaging_deb.sh)
	dpkg-dev debhelper lintian
	# metrics: a real scraper and linter, a strict OpenMetrics parser
	# (tests/functional/metrics_prometheus.sh)
	curl prometheus python3-prometheus-client
	# bench --plot: charts (bench/plot.py, tests/functional/bench_plot.sh)
	gnuplot-nox
	# the QEMU guest image (tests/guest/build.sh); soft-RoCE in it: the rxe
	# verbs provider, ibv_devinfo, perftest (ib_write_bw: bench/rdma.sh)
	busybox-static cpio xz-utils lz4 zstd ibverbs-providers ibverbs-utils perftest
)

missing=()
# One dpkg-query for all; a package dpkg has never heard of prints nothing.
# dpkg-query exits 1 when any package is unknown to it (a fresh machine):
# that is an answer here, not a failure, so pipefail must not end the script.
installed=" $({ dpkg-query -W -f='${db:Status-Status}:${Package} ' "${PKGS[@]}" 2>/dev/null || true; } |
	tr ' ' '\n' | sed -n 's/^installed://p' | tr '\n' ' ') "
for p in "${PKGS[@]}"; do
	case "$installed" in *" $p "*) ;; *) missing+=("$p") ;; esac
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "${1-}" = "--check" ]; then
	echo "missing packages: ${missing[*]}"
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
	exit 1
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
# Package lists may be missing or stale on a fresh machine: update once on failure.
if ! apt_install "${missing[@]}" </dev/null; then
	apt-get update -q </dev/null
	apt_install "${missing[@]}" </dev/null
fi
# The prometheus package is here for its tools (promtool, a scraper the
# metrics test starts on a private port); its own service has no place on a
# test machine: stop it if installing it started one.
case " ${missing[*]} " in *" prometheus "*)
	if [ -x /etc/init.d/prometheus ] && pgrep -x prometheus >/dev/null; then
		/etc/init.d/prometheus stop >/dev/null 2>&1 || true
	fi ;;
esac
