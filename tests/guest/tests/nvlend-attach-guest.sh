# SPDX-License-Identifier: BSD-3-Clause
# Guest half of tests/functional/attach_guest.sh (busybox sh, Debian's 6.12
# backports kernel: nbd, ublk_drv, nvme-tcp, nvmet-tcp). nvlend's binaries
# come from the host's build dir shared at /host. nvlendd runs here too (shm
# does not cross the VM boundary). Checks, printing ATTACH_OK/ATTACH_FAIL:
#   nbd   attach, mkfs.ext4, mount, write, detach refused while mounted, detach
#   ublk  a second host (own host NQN) finds the files (e2fsck clean), and the
#         attachment survives kill -9 + restart of nvlendd under a verifying fio
#   auto  picks ublk for an shm URI
#   tcp   nvlend's NVMe/TCP target, read by the kernel initiator and by ublk
#         over libnvlend's TCP initiator
#   kernel  the kernel NVMe/TCP initiator against the kernel's own nvmet-tcp
#         target on this guest's loopback
set -u
B=/host/bin
export PATH=$B:$PATH
export NVLEND_ATTACH_DIR=/run/nvlend-attach NVLEND_SOCKET=/tmp/nvlendd.sock
fails=0
ok() { echo "ATTACH_OK $*"; }
bad() { echo "ATTACH_FAIL $*"; fails=$((fails + 1)); }
# wait_for SECS CMD...
wait_for() {
	n=$(($1 * 10)); shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ $n -le 0 ] && return 1; sleep 0.1
	done
}
field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$NVLEND_ATTACH_DIR/$1.json" | head -n 1; }

uname -r
for m in nbd ublk_drv nvme-tcp nvmet-tcp loop; do modprobe $m 2>&1 || echo "modprobe $m failed"; done
ls -l /dev/ublk-control /dev/nbd0 /dev/nvme-fabrics 2>&1

start_daemon() {
	nvlendd -s $NVLEND_SOCKET "$@" >>/tmp/nvlendd.log 2>&1 &
	DPID=$!
	wait_for 20 nvlend -t 1 rpc nvlend_get_version
}
start_daemon || { cat /tmp/nvlendd.log; echo "ATTACH_FAIL nvlendd does not start"; exit 1; }
truncate -s 128M /dev/shm/ns.img
NQN=nqn.2026-01.io.nvlend.test:guest
nvlend bdev create file f0 /dev/shm/ns.img >/dev/null &&
nvlend rpc nvmf_create_subsystem "{\"nqn\":\"$NQN\",\"allow_any_host\":true}" >/dev/null &&
nvlend rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"f0\"}}" >/dev/null &&
nvlend rpc nvmf_subsystem_add_listener \
	"{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"SHM\",\"traddr\":\"/tmp/ns.sock\"}}" >/dev/null ||
	{ cat /tmp/nvlendd.log; echo "ATTACH_FAIL target setup"; exit 1; }
nvlend save-config >/tmp/config.json
URI="nvme+shm:///tmp/ns.sock?nqn=$NQN"
mkdir -p /mnt/a /mnt/b

# ---- kernel NBD -------------------------------------------------------------------
if dev=$(nvlend attach "$URI" --via nbd --name n1 --queues 2 --qd 16); then
	nb=${dev#/dev/}
	[ "$(cat /sys/block/$nb/size)" = $((128 * 2048)) ] && ok "nbd size" || bad "nbd size"
	nvlend attachments
	if mkfs.ext4 -q -F "$dev" && mount "$dev" /mnt/a; then
		dd if=/dev/urandom of=/mnt/a/data bs=64k count=64 2>/dev/null
		echo "from nbd" >/mnt/a/note
		sync
		SUM=$(md5sum </mnt/a/data)
		out=$(nvlend detach n1 2>&1) && bad "nbd detach while mounted succeeded" ||
			{ case "$out" in *"/mnt/a"*) ok "nbd detach refused while mounted" ;;
			  *) bad "nbd refusal does not name the mount point: $out" ;; esac; }
		umount /mnt/a && ok "nbd mkfs, mount, write, umount" || bad "nbd umount"
	else
		bad "nbd mkfs/mount"
	fi
	nvlend detach n1 && ok "nbd detach" || bad "nbd detach"
	[ -e /sys/block/$nb/pid ] && bad "nbd device still connected" || ok "nbd released"
else
	bad "nbd attach"; cat $NVLEND_ATTACH_DIR/*.log 2>/dev/null
fi

# ---- ublk: another host reads what the nbd host wrote -----------------------------------
if dev=$(nvlend attach "$URI" --via ublk --name u1 --queues 2 --qd 16 \
	--hostnqn nqn.2026-01.io.nvlend.test:guest-host2 --reconnect-timeout 60); then
	case "$dev" in /dev/ublkb*) ok "ublk device $dev" ;; *) bad "ublk device $dev" ;; esac
	e2fsck -fn "$dev" >/tmp/fsck.log 2>&1 && ok "ublk fsck clean" || { cat /tmp/fsck.log; bad "ublk fsck"; }
	if mount "$dev" /mnt/b; then
		[ "$(md5sum </mnt/b/data)" = "${SUM:-x}" ] && [ "$(cat /mnt/b/note)" = "from nbd" ] &&
			ok "ublk reads the nbd host's files" || bad "ublk file contents"
		umount /mnt/b
	else
		bad "ublk mount"
	fi
	# a verifying writer across kill -9 + restart of the target
	fio --name=w --filename="$dev" --rw=write --bs=64k --size=16M --direct=1 --ioengine=psync \
		--verify=crc32c --do_verify=1 --verify_fatal=1 --rate=4m >/tmp/fio.log 2>&1 &
	FPID=$!
	sleep 1.5
	kill -9 $DPID; wait $DPID 2>/dev/null
	wait_for 10 sh -c "nvlend attachments | grep -q reconnecting" && ok "ublk reconnecting" ||
		bad "state not reconnecting"
	sleep 1
	start_daemon -c /tmp/config.json || bad "restart nvlendd"
	wait $FPID
	frc=$?
	if [ $frc = 0 ] && grep -q "err= 0" /tmp/fio.log; then ok "ublk survives a target restart (fio verify)"
	else cat /tmp/fio.log; bad "fio across the restart ($frc)"; fi
	nvlend detach u1 && ok "ublk detach" || bad "ublk detach"
	[ -e "$dev" ] && bad "ublk device still there" || ok "ublk device removed"
else
	bad "ublk attach"; cat $NVLEND_ATTACH_DIR/*.log 2>/dev/null
fi

# ---- auto, read-only ------------------------------------------------------------------
if dev=$(nvlend attach "$URI" --name a1 --readonly); then
	mech=$(field a1 mechanism)
	[ "$mech" = ublk ] && ok "auto picks ublk" || bad "auto picked $mech"
	[ "$(cat /sys/block/${dev#/dev/}/ro)" = 1 ] && ok "read-only device" || bad "not read-only"
	dd if=/dev/zero of="$dev" bs=4k count=1 conv=fsync 2>/dev/null && bad "write to a read-only device" ||
		ok "write refused"
	nvlend detach a1 || bad "detach a1"
else
	bad "auto attach"
fi
# ---- nvlend's own NVMe/TCP target ---------------------------------------------------------
TURI="nvme+tcp://127.0.0.1:4421/$NQN"
if ! nvlend rpc nvmf_get_transports 2>/dev/null | grep -q '"TCP"'; then
	bad "nvmf_get_transports lists no TCP transport"
elif ! nvlend rpc nvmf_create_transport '{"trtype":"TCP"}' >/dev/null; then
	bad "nvmf_create_transport TCP"
elif ! nvlend rpc nvmf_subsystem_add_listener "{\"nqn\":\"$NQN\",\"listen_address\":{\"trtype\":\"TCP\",\"adrfam\":\"IPv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"4421\"}}" >/dev/null; then
	bad "TCP listener"
else
	if dev=$(nvlend attach "$TURI" --name t1 --via kernel); then
		dd if="$dev" bs=1M count=4 2>/dev/null | md5sum >/tmp/t1.sum &&
			[ "$(cat /tmp/t1.sum)" = "$(dd if=/dev/shm/ns.img bs=1M count=4 2>/dev/null | md5sum)" ] &&
			ok "kernel initiator on nvlend's TCP target" || bad "read over nvlend TCP (kernel)"
		nvlend detach t1 || bad "detach t1"
	else
		bad "kernel attach to nvlend's TCP target"
	fi
	if dev=$(nvlend attach "$TURI" --name t2 --via ublk); then
		[ "$(dd if="$dev" bs=1M count=4 2>/dev/null | md5sum)" = "$(cat /tmp/t1.sum 2>/dev/null)" ] &&
			ok "ublk over libnvlend TCP" || bad "read over libnvlend TCP"
		nvlend detach t2 || bad "detach t2"
	else
		bad "ublk attach over libnvlend TCP"
	fi
fi
kill $DPID; wait $DPID

# ---- kernel NVMe/TCP initiator (against nvmet-tcp on loopback) ------------------------------
C=/sys/kernel/config/nvmet
KNQN=nqn.2026-01.io.nvlend.test:kernel-ref
grep -q " /sys/kernel/config " /proc/mounts || mount -t configfs configfs /sys/kernel/config
if [ -d $C ]; then
	truncate -s 64M /tmp/nvmet.img
	mkdir $C/subsystems/$KNQN && echo 1 >$C/subsystems/$KNQN/attr_allow_any_host &&
	mkdir $C/subsystems/$KNQN/namespaces/1 &&
	echo -n /tmp/nvmet.img >$C/subsystems/$KNQN/namespaces/1/device_path &&
	echo 1 >$C/subsystems/$KNQN/namespaces/1/enable &&
	mkdir $C/ports/1 && echo tcp >$C/ports/1/addr_trtype && echo ipv4 >$C/ports/1/addr_adrfam &&
	echo 127.0.0.1 >$C/ports/1/addr_traddr && echo 4420 >$C/ports/1/addr_trsvcid &&
	ln -s $C/subsystems/$KNQN $C/ports/1/subsystems/$KNQN || bad "nvmet setup"
	if dev=$(nvlend attach "nvme+tcp://127.0.0.1:4420/$KNQN" --name k1); then
		[ "$(field k1 mechanism)" = kernel ] && ok "auto picks the kernel initiator for tcp" ||
			bad "mechanism $(field k1 mechanism)"
		nvlend attachments
		if mkfs.ext4 -q -F "$dev" && mount "$dev" /mnt/a; then
			echo "via nvme-tcp" >/mnt/a/k && sync
			nvlend detach k1 >/dev/null 2>&1 && bad "kernel detach while mounted" ||
				ok "kernel detach refused while mounted"
			umount /mnt/a && ok "kernel mkfs, mount, write" || bad "kernel umount"
		else
			bad "kernel mkfs/mount"
		fi
		ctrl=$(field k1 backing)
		nvlend detach k1 && ok "kernel detach" || bad "kernel detach"
		[ -e /sys/class/nvme/$ctrl ] && bad "controller $ctrl still there" || ok "controller deleted"
	else
		bad "kernel attach"
	fi
else
	bad "no nvmet configfs"
fi
echo "ATTACH_GUEST_DONE fails=$fails"
exit $fails
