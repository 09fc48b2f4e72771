#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# libnvlend calls end to end over shm, against RAM namespaces 1 and 3:
#   - tests/helpers/libnvlend_api io: nvl_compare (match, and a one-bit
#     mismatch giving Compare Failure), nvl_flush / nvl_flush_sync (one
#     namespace, broadcast, inactive nsid), nvl_write_zeroes (plain and
#     DEAC|FUA; zeroes read back, neighbours intact), nvl_deallocate (ranges
#     read back as Identify's DLFEAT promises), nvl_ctrlr_list_ns.
#   - nvlend-perf --json --rwmixread=70 --verify for one second: the JSON
#     parses, reads and writes both happened in roughly a 70/30 mix, no I/O
#     or verify error.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires /usr/bin/python3

start_nvlendd
shm_target api 64M
nvlend bdev create ram api3 16M >/dev/null || fail "bdev create api3"
rpc nvmf_subsystem_add_ns "{\"nqn\":\"$NQN\",\"namespace\":{\"bdev_name\":\"api3\",\"nsid\":3}}" \
	>/dev/null || fail "add ns 3"

# 1. the I/O calls, with their checks in the helper
"$BUILD/tests/helpers/libnvlend_api" io "$URI" >"$T/io.out" 2>&1
rc=$?
cat "$T/io.out" >&2
[ $rc = 0 ] || fail "libnvlend_api io: $rc failed checks"
[ "$(grep -c '^PASS' "$T/io.out")" -ge 20 ] || fail "libnvlend_api io ran too few checks"

# 2. nvlend-perf: JSON output, read/write mix, verify
# (past the blocks step 1 left its patterns in: those are no perf blocks)
"$BIN/nvlend-perf" "$URI&nsid=1" --rw=randrw --rwmixread=70 --bs=4k --iodepth=8 --offset=1M \
	--size=16M \
	--runtime=1 --verify --json >"$T/perf.json" 2>"$T/perf.err" ||
	{ cat "$T/perf.json" "$T/perf.err" >&2; fail "nvlend-perf --json --rwmixread=70 --verify"; }
/usr/bin/python3 - "$T/perf.json" <<'PY' || fail "nvlend-perf JSON result"
import json, sys
d = json.load(open(sys.argv[1]))
def need(ok, what):
    if not ok:
        sys.exit("perf JSON: %s: %s" % (what, json.dumps(d)))
need(d["rw"] == "randrw" and d["bs"] == 4096 and d["iodepth"] == 8, "echoed options")
need(d["elapsed_s"] > 0.5, "elapsed_s")
r, w = d.get("read", {}).get("ios", 0), d.get("write", {}).get("ios", 0)
need(r > 0 and w > 0, "both reads (%d) and writes (%d)" % (r, w))
frac = r / (r + w)
need(r + w >= 100, "enough I/O for a ratio (%d)" % (r + w))
need(0.55 <= frac <= 0.85, "read fraction %.3f for rwmixread=70" % frac)
for k in ("read", "write"):
    need(d[k]["bytes"] == d[k]["ios"] * 4096, k + " bytes")
    need(d[k]["iops"] > 0 and d[k]["lat_us"]["max"] >= d[k]["lat_us"]["min"], k + " figures")
need(d["errors"] == 0, "I/O errors")
need(d["verify"]["errors"] == 0 and d["verify"]["checked"] > 0,
     "verify (%s)" % d["verify"])
print("perf: %d reads, %d writes (%.1f%% reads), %d blocks verified"
      % (r, w, 100 * frac, d["verify"]["checked"]))
PY
pass
