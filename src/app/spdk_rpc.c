/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Methods an SPDK save_config emits and SPDK scripts call that have no
 * meaning in nvlend: their whole parameter set (as SPDK's schema lists it,
 * v24.01 to v26.05) is accepted, checked for type and ignored, so an SPDK
 * saved configuration loads into `nvlendd -c` unchanged. docs/rpc.md (from
 * rpc_get_methods detailed=true) marks every parameter ignored and each
 * method's help says why. bdev_wait_for_examine is answered at once (nvlend
 * examines nothing). thread_get_stats reports the reactors (nvlend's
 * threads) with their busy and idle time; nbd_get_disks the kernel NBD
 * devices nvlend serves: none (it serves NBD over the network, see
 * nbd_get_exports).
 *
 * Glue only; no state. Threads: reactor 0 (the RPC reactor).
 */
#include "reactor/reactor.h"
#include "rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

/* nothing to decode into: every parameter below is NVL_RPC_PARAM_IGNORED */
struct spdk_rpc_none {
	char unused;
};

static void
spdk_rpc_accept(struct nvl_rpc_request *req, struct spdk_rpc_none *unused)
{
	(void)unused;
	nvl_rpc_result_bool(req, true);
}

static const struct nvl_rpc_param set_scheduler_params[] = {
    NVL_RPC_PARAM_IGNORED("name", NVL_RPC_T_STR, "a scheduler setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("period", NVL_RPC_T_I64, "a scheduler setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("load_limit", NVL_RPC_T_I64, "a scheduler setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("core_limit", NVL_RPC_T_I64, "a scheduler setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("core_busy", NVL_RPC_T_I64, "a scheduler setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("mappings", NVL_RPC_T_STR, "a scheduler setting of SPDK's"),
};

static void
rpc_set_scheduler(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("framework_set_scheduler", rpc_set_scheduler, struct spdk_rpc_none,
		 set_scheduler_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's scheduler (static, dynamic, gscheduler) and its tuning. Accepted and "
		 "ignored: each nvlend reactor owns its CPU (nvlendd -m) and sleeps when idle "
		 "(framework_set_spin), there is no thread scheduler to choose.")

static const struct nvl_rpc_param sock_impl_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("impl_name", NVL_RPC_T_STR, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("recv_buf_size", NVL_RPC_T_I64, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("send_buf_size", NVL_RPC_T_I64, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_recv_pipe", NVL_RPC_T_BOOL, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_quickack", NVL_RPC_T_BOOL, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_placement_id", NVL_RPC_T_I64, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_zerocopy_send_server", NVL_RPC_T_BOOL,
			  "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_zerocopy_send_client", NVL_RPC_T_BOOL,
			  "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("zerocopy_threshold", NVL_RPC_T_I64, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("tls_version", NVL_RPC_T_I64, "a socket option of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_ktls", NVL_RPC_T_BOOL, "a socket option of SPDK's"),
};

static void
rpc_sock_impl_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("sock_impl_set_options", rpc_sock_impl_set_options, struct spdk_rpc_none,
		 sock_impl_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's socket layer options (posix, ssl, uring). Accepted and ignored: nvlend's "
		 "NVMe/TCP target has its own socket code, tuned by nvmf_create_transport.")

static const struct nvl_rpc_param iobuf_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("small_pool_count", NVL_RPC_T_I64, "an iobuf pool setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("large_pool_count", NVL_RPC_T_I64, "an iobuf pool setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("small_bufsize", NVL_RPC_T_I64, "an iobuf pool setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("large_bufsize", NVL_RPC_T_I64, "an iobuf pool setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_numa", NVL_RPC_T_BOOL, "an iobuf pool setting of SPDK's"),
};

static void
rpc_iobuf_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("iobuf_set_options", rpc_iobuf_set_options, struct spdk_rpc_none,
		 iobuf_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's shared buffer pools. Accepted and ignored: nvlend sizes its data buffers "
		 "per queue from the transport options.")

static const struct nvl_rpc_param accel_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("small_cache_size", NVL_RPC_T_I64,
			  "an accel framework setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("large_cache_size", NVL_RPC_T_I64,
			  "an accel framework setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("task_count", NVL_RPC_T_I64, "an accel framework setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("sequence_count", NVL_RPC_T_I64, "an accel framework setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("buf_count", NVL_RPC_T_I64, "an accel framework setting of SPDK's"),
};

static void
rpc_accel_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("accel_set_options", rpc_accel_set_options, struct spdk_rpc_none,
		 accel_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's acceleration framework (copy, CRC, compression offload). Accepted and "
		 "ignored: nvlend has no accel framework.")

static const struct nvl_rpc_param bdev_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("bdev_io_pool_size", NVL_RPC_T_I64, "a bdev layer setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("bdev_io_cache_size", NVL_RPC_T_I64, "a bdev layer setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("bdev_auto_examine", NVL_RPC_T_BOOL, "a bdev layer setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("iobuf_small_cache_size", NVL_RPC_T_I64,
			  "a bdev layer setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("iobuf_large_cache_size", NVL_RPC_T_I64,
			  "a bdev layer setting of SPDK's"),
};

static void
rpc_bdev_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("bdev_set_options", rpc_bdev_set_options, struct spdk_rpc_none,
		 bdev_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's bdev layer pools and auto-examine. Accepted and ignored: nvlend's bdev "
		 "layer keeps no global I/O pool and examines nothing.")

static const struct nvl_rpc_param bdev_raid_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("process_window_size_kb", NVL_RPC_T_I64, "a RAID bdev setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("process_max_bandwidth_mb_sec", NVL_RPC_T_I64,
			  "a RAID bdev setting of SPDK's"),
};

static void
rpc_bdev_raid_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("bdev_raid_set_options", rpc_bdev_raid_set_options, struct spdk_rpc_none,
		 bdev_raid_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's RAID bdev options (emitted by save_config even without a RAID bdev). "
		 "Accepted and ignored: nvlend has no RAID bdev.")

static const struct nvl_rpc_param bdev_nvme_set_options_params[] = {
    NVL_RPC_PARAM_IGNORED("action_on_timeout", NVL_RPC_T_ANY,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("timeout_us", NVL_RPC_T_I64, "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("timeout_admin_us", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("keep_alive_timeout_ms", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("arbitration_burst", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("low_priority_weight", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("medium_priority_weight", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("high_priority_weight", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("nvme_adminq_poll_period_us", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("nvme_ioq_poll_period_us", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("io_queue_requests", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("delay_cmd_submit", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("transport_retry_count", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("bdev_retry_count", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("transport_ack_timeout", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("ctrlr_loss_timeout_sec", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("reconnect_delay_sec", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("fast_io_fail_timeout_sec", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("disable_auto_failback", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("generate_uuids", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("transport_tos", NVL_RPC_T_I64, "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("nvme_error_stat", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("rdma_srq_size", NVL_RPC_T_I64, "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("io_path_stat", NVL_RPC_T_BOOL, "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("allow_accel_sequence", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("rdma_max_cq_size", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("rdma_cm_event_timeout_ms", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("dhchap_digests", NVL_RPC_T_ARRAY,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("dhchap_dhgroups", NVL_RPC_T_ARRAY,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("rdma_umr_per_io", NVL_RPC_T_BOOL,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("tcp_connect_timeout_ms", NVL_RPC_T_I64,
			  "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("enable_flush", NVL_RPC_T_BOOL, "an NVMe bdev driver setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("multipath_opts", NVL_RPC_T_OBJ, "an NVMe bdev driver setting of SPDK's"),
};

static void
rpc_bdev_nvme_set_options(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER(
    "bdev_nvme_set_options", rpc_bdev_nvme_set_options, struct spdk_rpc_none,
    bdev_nvme_set_options_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
    "SPDK's NVMe bdev driver options (timeouts, retries, polling). Accepted and ignored: nvlend's "
    "bdev_nvme_attach_controller takes what it needs per controller.")

static const struct nvl_rpc_param bdev_nvme_set_hotplug_params[] = {
    NVL_RPC_PARAM_IGNORED("enable", NVL_RPC_T_BOOL, "a hot-plug monitor setting of SPDK's"),
    NVL_RPC_PARAM_IGNORED("period_us", NVL_RPC_T_I64, "a hot-plug monitor setting of SPDK's"),
};

static void
rpc_bdev_nvme_set_hotplug(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("bdev_nvme_set_hotplug", rpc_bdev_nvme_set_hotplug, struct spdk_rpc_none,
		 bdev_nvme_set_hotplug_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's PCIe hot-plug monitor. Accepted and ignored: nvlend attaches no PCIe NVMe "
		 "devices, so there is nothing to monitor.")

static const struct nvl_rpc_param nvmf_set_max_subsystems_params[] = {
    NVL_RPC_PARAM_IGNORED("max_subsystems", NVL_RPC_T_I64, "SPDK's subsystem table size"),
};

static void
rpc_nvmf_set_max_subsystems(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("nvmf_set_max_subsystems", rpc_nvmf_set_max_subsystems, struct spdk_rpc_none,
		 nvmf_set_max_subsystems_params, NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's subsystem table size, fixed at start-up. Accepted and ignored: nvlend's "
		 "subsystem list grows as needed.")

static const struct nvl_rpc_param nvmf_set_crdt_params[] = {
    NVL_RPC_PARAM_IGNORED("crdt1", NVL_RPC_T_I64, "a Command Retry Delay Time of SPDK's"),
    NVL_RPC_PARAM_IGNORED("crdt2", NVL_RPC_T_I64, "a Command Retry Delay Time of SPDK's"),
    NVL_RPC_PARAM_IGNORED("crdt3", NVL_RPC_T_I64, "a Command Retry Delay Time of SPDK's"),
};

static void
rpc_nvmf_set_crdt(struct nvl_rpc_request *req, struct spdk_rpc_none *a)
{
	spdk_rpc_accept(req, a);
}
NVL_RPC_REGISTER("nvmf_set_crdt", rpc_nvmf_set_crdt, struct spdk_rpc_none, nvmf_set_crdt_params,
		 NVL_RPC_RUNTIME | NVL_RPC_STARTUP,
		 "SPDK's Command Retry Delay Times of Identify Controller. Accepted and ignored: "
		 "nvlend's target asks hosts for no retry delay (CRDT 0, SPDK's default).")

static void
rpc_bdev_wait_for_examine(struct nvl_rpc_request *req, void *unused)
{
	(void)unused;
	nvl_rpc_result_bool(req, true);
}
NVL_RPC_REGISTER_NOARGS("bdev_wait_for_examine", rpc_bdev_wait_for_examine, NVL_RPC_RUNTIME,
			"SPDK's wait for the bdev modules to examine new bdevs. Answered true at "
			"once: nvlend's bdevs are complete when their create call returns.")

/* SPDK's thread_get_stats: one "thread" per reactor, busy and idle in ns
 * (tick_rate 1e9); idle is the time spent spinning without work plus asleep. */
static void
rpc_thread_get_stats(struct nvl_rpc_request *req, void *unused)
{
	json_t *arr = json_array();
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	(void)unused;
	for (unsigned i = 0; i < nvl_reactor_count(); i++) {
		struct nvl_reactor_stats s;
		char name[32], mask[20];
		uint64_t m;

		nvl_reactor_get_stats(nvl_reactor_get(i), &s);
		snprintf(name, sizeof(name), "reactor_%u", i);
		if (s.cpu >= 0 && s.cpu < 64)
			m = 1ULL << s.cpu;
		else /* unpinned: any CPU */
			m = ncpu >= 64 ? UINT64_MAX : (1ULL << (ncpu > 0 ? ncpu : 1)) - 1;
		snprintf(mask, sizeof(mask), "%llx", (unsigned long long)m);
		json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:I, s:I, s:i, s:i, s:i}", "name",
						     name, "id", (int)i + 1, "cpumask", mask, "busy",
						     (json_int_t)s.busy_ns, "idle",
						     (json_int_t)(s.idle_ns + s.sleep_ns),
						     "active_pollers_count", (int)s.pollers,
						     "timed_pollers_count", 0, "paused_pollers_count", 0));
	}
	nvl_rpc_result(req, json_pack("{s:I, s:o}", "tick_rate", (json_int_t)1000000000, "threads",
				      arr));
}
NVL_RPC_REGISTER_NOARGS("thread_get_stats", rpc_thread_get_stats, NVL_RPC_RUNTIME,
			"SPDK's thread statistics, one entry per reactor (reactor_N): CPU mask, "
			"busy and idle time in ns (tick_rate 1e9; idle includes the time asleep), "
			"pollers. framework_get_reactors has the same counters and more.")

struct rpc_nbd_get_disks {
	const char *nbd_device;
};

static const struct nvl_rpc_param nbd_get_disks_params[] = {
	NVL_RPC_PARAM(struct rpc_nbd_get_disks, nbd_device, NVL_RPC_T_STR, false,
		      "only this device (/dev/nbdN): not found, as nvlend serves none"),
};

static void
rpc_nbd_get_disks(struct nvl_rpc_request *req, struct rpc_nbd_get_disks *a)
{
	if (a->nbd_device) {
		nvl_rpc_error(req, -ENODEV, "%s: not an NBD device served here", a->nbd_device);
		return;
	}
	nvl_rpc_result(req, json_array());
}
NVL_RPC_REGISTER("nbd_get_disks", rpc_nbd_get_disks, struct rpc_nbd_get_disks,
		 nbd_get_disks_params, NVL_RPC_RUNTIME,
		 "SPDK's kernel NBD devices (nbd_start_disk): an empty list, since nvlend "
		 "attaches no kernel NBD device; it serves NBD over the network instead "
		 "(nbd_server_start, nbd_get_exports).")
