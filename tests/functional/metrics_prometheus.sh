#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Metrics for Prometheus (operability issue, item 1). nvlendd --metrics serves
# /metrics; after known I/O (a RAM namespace over shm, an NBD export, a
# virtio-blk controller and a brick exist too):
#   - promtool check metrics (Prometheus' own linter) has nothing to say;
#   - the OpenMetrics form (Accept: application/openmetrics-text) parses with
#     the prometheus_client OpenMetrics parser, which is strict;
#   - values agree with bdev_get_iostat and nvmf_subsystem_get_controllers;
#     the latency histogram counts every read; process and reactor figures;
#   - a real Prometheus server scrapes it (up == 1, a counter queried back);
#   - 404 elsewhere, 405 for POST, 503 beyond the connection budget, the
#     metrics_* RPCs, save_config keeps the exporter;
#   - every metric the Grafana dashboard (contrib/grafana/) plots exists.
# timeout: 120
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/shm_common.sh"
requires curl promtool prometheus /usr/bin/python3
/usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null ||
	skip "python3-prometheus-client is not installed"
cd "$T" || fail "cd"
MP=$(free_port)
start_nvlendd --metrics "127.0.0.1:$MP"
shm_target m0 32M
nvlend bdev create ram r1 8M >/dev/null
NP=$(free_port)
nvlend nbd start --port "$NP" >/dev/null && nvlend nbd export add e1 r1 >/dev/null || fail "nbd"
nvlend vblk create v1 r1 "$T/v1.sock" >/dev/null || fail "vblk"
nvlend brick create b1 --fast "$T/bf" --capacity 2 >/dev/null || fail "brick"
"$BIN/nvlend-perf" "$URI" --rw=write --bs=4k --io_limit=4M --iodepth=4 >/dev/null || fail "writes"
"$BIN/nvlend-perf" "$URI" --rw=read --bs=4k --io_limit=8M --iodepth=4 >/dev/null || fail "reads"
M="http://127.0.0.1:$MP/metrics"

curl -sf "$M" >"$T/m.txt" || fail "GET /metrics"
promtool check metrics <"$T/m.txt" >"$T/lint" 2>&1 || { cat "$T/lint" >&2; fail "promtool check metrics failed"; }
[ -s "$T/lint" ] && { cat "$T/lint" >&2; fail "promtool check metrics complained"; }
curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0; charset=utf-8' -D "$T/h" "$M" \
	>"$T/om.txt" || fail "GET OpenMetrics"
grep -qi '^Content-Type: application/openmetrics-text' "$T/h" || fail "OpenMetrics content type"
/usr/bin/python3 - "$T/om.txt" <<'PY' || fail "the OpenMetrics output does not parse"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
n = sum(1 for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples)
print("OpenMetrics samples:", n)
sys.exit(0 if n > 50 else 1)
PY

# values: the same figures the RPCs report
val() { grep -E "^$1 " "$T/m.txt" | awk '{print $2}'; }
io=$(rpc bdev_get_iostat '{"name":"m0"}')
reads=$(echo "$io" | json_get '["bdevs"][0]["num_read_ops"]')
written=$(echo "$io" | json_get '["bdevs"][0]["bytes_written"]')
assert_eq "$(val 'nvlend_bdev_read_ops_total\{bdev="m0"\}')" "$reads" "read ops"
assert_eq "$(val 'nvlend_bdev_written_bytes_total\{bdev="m0"\}')" "$written" "bytes written"
[ "$written" = $((4 << 20)) ] || fail "expected 4 MiB written, iostat says $written"
assert_eq "$(val 'nvlend_bdev_read_latency_seconds_count\{bdev="m0"\}')" "$reads" "histogram count"
assert_eq "$(val 'nvlend_bdev_read_latency_seconds_bucket\{bdev="m0",le="\+Inf"\}')" "$reads" "+Inf bucket"
assert_eq "$(val 'nvlend_bdev_size_bytes\{bdev="m0",type="ram"\}')" $((32 << 20)) "bdev size"
assert_eq "$(val 'nvlend_subsystem_namespaces\{nqn="'"$NQN"'"\}')" 1 "namespaces"
assert_eq "$(val 'nvlend_subsystem_keep_alive_expiries_total\{nqn="'"$NQN"'"\}')" 0 "keep-alive expiries"
grep -q '^nvlend_controller_read_commands_total{nqn="'"$NQN"'",cntlid=' "$T/m.txt" ||
	grep -q 'nvlend_controller_read_commands_total' "$T/m.txt" || fail "controller counters"
grep -q '^nvlend_nbd_server_running 1$' "$T/m.txt" || fail "nbd server"
grep -q '^nvlend_nbd_export_connections{export="e1"} 0$' "$T/m.txt" || fail "nbd export"
grep -q '^nvlend_vblk_frontend_connected{controller="v1"} 0$' "$T/m.txt" || fail "vblk"
grep -q '^nvlend_brick_capacity_blocks{brick="b1"} 2$' "$T/m.txt" || fail "brick"
grep -q '^nvlend_reactor_loops_total{reactor="0"} [1-9]' "$T/m.txt" || fail "reactor loops"
grep -q '^nvlend_reactor_busy_seconds_total{reactor="0"} [0-9.e+-]*[1-9]' "$T/m.txt" || fail "reactor busy time"
grep -q '^nvlend_reactor_sleep_seconds_total{reactor="0"} ' "$T/m.txt" || fail "reactor sleep time"
grep -q '^process_open_fds [1-9]' "$T/m.txt" || fail "process fds"
grep -q '^nvlend_ram_bdev_bytes '$(((32 + 8) << 20))'$' "$T/m.txt" || fail "RAM bdev memory"

# HTTP edges
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/")" 404 "404"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$M")" 405 "405"
/usr/bin/python3 - "$MP" <<'PY' || fail "connection budget"
import socket, sys, urllib.request, urllib.error
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(8)]
try:
    urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5)
    sys.exit("a 9th scrape was served")
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 503 else "status %d" % e.code)
PY
sleep 0.2
curl -sf "$M" >/dev/null || fail "the exporter did not recover after the held connections"

# a real Prometheus scrapes it
PP=$(free_port)
cat >"$T/prom.yml" <<EOF2
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: nvlend
    static_configs: [{targets: ['127.0.0.1:$MP']}]
EOF2
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$PP" >"$T/prom.log" 2>&1 &
PROM=$!
on_exit "kill $PROM; wait $PROM"
q() { curl -sf "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1" |
	/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'; }
wait_until 30 sh -c "curl -sf 'http://127.0.0.1:$PP/api/v1/query?query=up' | grep -q '\"1\"'" ||
	{ tail -20 "$T/prom.log" >&2; fail "Prometheus never scraped the exporter"; }
assert_eq "$(q 'up{job="nvlend"}')" 1 "Prometheus: up"
assert_eq "$(q 'nvlend_bdev_written_bytes_total{bdev="m0"}')" "$written" "Prometheus: a counter"
kill "$PROM"; wait "$PROM" 2>/dev/null

# RPCs and save_config
rpc metrics_get_exporter | grep_q '"running": true' || fail "metrics_get_exporter"
nvlend save-config | grep_q '"metrics_start_exporter"' || fail "save_config lacks the exporter"
rpc metrics_stop_exporter >/dev/null || fail "metrics_stop_exporter"
curl -sf "$M" >/dev/null 2>&1 && fail "still serving after stop"
rpc metrics_start_exporter "{\"port\": $MP}" >/dev/null || fail "metrics_start_exporter"
curl -sf "$M" >"$T/m.txt" || fail "not serving after a restart of the exporter"

# the dashboard plots only what exists
/usr/bin/python3 - "$TOP/contrib/grafana/nvlend.json" "$T/m.txt" <<'PY' || fail "dashboard"
import json, re, sys
dash = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().splitlines()
# families (TYPE lines: declared even when no object has samples now) and samples
have = {l.split()[2] for l in lines if l.startswith("# TYPE ")}
have |= {l.split("{")[0].split(" ")[0] for l in lines if l and not l.startswith("#")}
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
assert len(exprs) >= 8, "too few panels"
missing = set()
for e in exprs:
    for name in re.findall(r"\b((?:nvlend|process)_[a-z0-9_]+)", e):
        if name not in have and not any(name == h.rsplit("_", 1)[0] for h in have):
            missing.add(name)
print("dashboard: %d queries" % len(exprs))
sys.exit("not exported: %s" % sorted(missing) if missing else 0)
PY
stop_nvlendd
pass
