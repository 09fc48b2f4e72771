#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# SPDK rpc.py compatibility. rpc.py is not packaged in Debian, so this drives
# the daemon with a client that frames requests exactly as SPDK's
# python/spdk/rpc/client.py does: one connection per invocation, ids from 1,
# each request json.dumps(indent=2) with no trailing newline, answers read
# until json raw_decode succeeds, "params" left out when empty, the socket
# shut down both ways at the end. Its save_config/load_config follow SPDK's
# rpc/__init__.py: framework_get_subsystems + framework_get_config, and
# rpc_get_methods {current, include_aliases} before replaying each call.
# Parameter names and result fields are SPDK's (doc/jsonrpc.md).
# timeout: 60
source "$(dirname "$0")/common.sh"

cat >"$T/spdk_rpc.py" <<'PY'
import json, socket, sys

class Client:
    """Frames like SPDK's JSONRPCClient (python/spdk/rpc/client.py)."""
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(10)
        self.req_id = 0
        self.buf = ""

    def call(self, method, params=None):
        self.req_id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self.req_id}
        if params:
            req["params"] = params
        self.sock.sendall(json.dumps(req, indent=2).encode())   # no newline, like rpc.py
        while True:
            buf = self.buf.lstrip()
            try:
                obj, idx = json.JSONDecoder().raw_decode(buf)
                self.buf = buf[idx:]
                break
            except ValueError:
                data = self.sock.recv(4096)
                if not data:
                    raise SystemExit("connection closed with partial response: %r" % self.buf)
                self.buf += data.decode()
        assert obj.get("id") == self.req_id, obj
        assert obj.get("jsonrpc") == "2.0", obj
        if "error" in obj:
            raise RuntimeError(obj["error"])
        return obj["result"]

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

def rpc(path, method, params=None):
    c = Client(path)
    try:
        return c.call(method, params)
    finally:
        c.close()

def save_config(path):
    """SPDK rpc.py save_config."""
    c = Client(path)
    cfg = {"subsystems": []}
    for s in c.call("framework_get_subsystems"):
        cfg["subsystems"].append({"subsystem": s["subsystem"],
                                  "config": c.call("framework_get_config", {"name": s["subsystem"]})})
    c.close()
    return cfg

def load_config(path, cfg):
    """SPDK rpc.py load_config (without framework_start_init, which nvlend lacks)."""
    c = Client(path)
    subsystems = [s for s in cfg["subsystems"] if s["config"]]
    allowed = c.call("rpc_get_methods", {"include_aliases": False})
    for s in subsystems:
        for e in s["config"]:
            if e.get("method") not in allowed:
                raise SystemExit("unknown method %s" % e.get("method"))
    allowed = c.call("rpc_get_methods", {"current": True, "include_aliases": False})
    n = 0
    for s in subsystems:
        for e in s["config"]:
            if e["method"] in allowed:
                c.call(**e)
                n += 1
    c.close()
    return n

if __name__ == "__main__":
    sock, cmd = sys.argv[1], sys.argv[2]
    if cmd == "save_config":
        print(json.dumps(save_config(sock), indent=2))
    elif cmd == "load_config":
        print(load_config(sock, json.load(open(sys.argv[3]))))
    else:
        params = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
        try:
            print(json.dumps(rpc(sock, cmd, params)))
        except RuntimeError as e:
            print(json.dumps(e.args[0]))
            sys.exit(1)
PY
spdk() { /usr/bin/python3 "$T/spdk_rpc.py" "$NVLEND_SOCKET" "$@"; }
truncate -s 16M "$T/aio.img"

start_nvlendd

# rpc_get_methods, spdk_get_version
methods=$(spdk rpc_get_methods) || fail "rpc_get_methods"
for m in bdev_malloc_create bdev_malloc_delete bdev_aio_create bdev_aio_delete bdev_get_bdevs \
	bdev_get_iostat rpc_get_methods framework_get_subsystems framework_get_config \
	spdk_kill_instance spdk_get_version log_set_level log_get_level; do
	assert_contains "$methods" "\"$m\"" "rpc_get_methods"
done
spdk rpc_get_methods '{"include_aliases": true, "current": true}' | grep_q '"bdev_aio_delete"' ||
	fail "rpc_get_methods with include_aliases and current"
ver=$(spdk spdk_get_version) || fail "spdk_get_version"
echo "$ver" | /usr/bin/python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["version"].startswith("nvlend v"), v
assert set(v["fields"]) >= {"major", "minor", "patch", "suffix"}, v' || fail "spdk_get_version shape: $ver"

# bdev_malloc_create as rpc.py sends it (rpc.py bdev_malloc_create -b Malloc7 64 512)
out=$(spdk bdev_malloc_create '{"num_blocks": 131072, "block_size": 512, "name": "Malloc7"}') ||
	fail "bdev_malloc_create: $out"
assert_eq "$out" '"Malloc7"' "bdev_malloc_create result (the name)"
out=$(spdk bdev_malloc_create '{"num_blocks": 2048, "block_size": 4096, "physical_block_size": 4096, "uuid": "2b6601ba-eada-44fb-9a83-a20eb9eb9e90", "optimal_io_boundary": 16, "md_size": 0, "md_interleave": false, "dif_type": 0, "dif_is_head_of_md": false}') ||
	fail "bdev_malloc_create with every optional param: $out"
assert_eq "$out" '"Malloc0"' "default name"
# bdev_aio_create as rpc.py sends it
out=$(spdk bdev_aio_create "{\"filename\": \"$T/aio.img\", \"name\": \"Aio0\", \"block_size\": 4096, \"readonly\": false, \"fallocate\": true}") ||
	fail "bdev_aio_create: $out"
assert_eq "$out" '"Aio0"' "bdev_aio_create result"
truncate -s "$(stat -c %s "$T/aio.img")" "$T/uring.img"
out=$(spdk bdev_uring_create "{\"filename\": \"$T/uring.img\", \"name\": \"Uring0\"}") ||
	fail "bdev_uring_create: $out"

# bdev_get_bdevs: SPDK's result fields
spdk bdev_get_bdevs '{"name": "Malloc0"}' >"$T/one.json" || fail "bdev_get_bdevs name"
spdk bdev_get_bdevs >"$T/all.json" || fail "bdev_get_bdevs"
/usr/bin/python3 - "$T/one.json" "$T/all.json" <<'PY' || fail "bdev_get_bdevs shape"
import json, sys
one, all_ = (json.load(open(p)) for p in sys.argv[1:3])
assert len(one) == 1 and len(all_) == 4, (one, all_)
b = one[0]
for k, t in (("name", str), ("aliases", list), ("product_name", str), ("block_size", int),
             ("num_blocks", int), ("uuid", str), ("claimed", bool), ("zoned", bool),
             ("supported_io_types", dict), ("driver_specific", dict),
             ("assigned_rate_limits", dict)):
    assert isinstance(b.get(k), t), (k, b.get(k))
assert b["name"] == "Malloc0" and b["block_size"] == 4096 and b["num_blocks"] == 2048, b
assert b["uuid"] == "2b6601ba-eada-44fb-9a83-a20eb9eb9e90", b
assert b["product_name"] == "Malloc disk", b
for k in ("read", "write", "flush", "unmap", "write_zeroes"):
    assert b["supported_io_types"][k] is True, b
assert {x["name"] for x in all_} == {"Malloc7", "Malloc0", "Aio0", "Uring0"}
PY
spdk bdev_get_iostat '{"name": "Aio0"}' | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["tick_rate"] > 0 and len(r["bdevs"]) == 1, r
b = r["bdevs"][0]
for k in ("name", "bytes_read", "num_read_ops", "bytes_written", "num_write_ops", "bytes_unmapped",
          "num_unmap_ops", "read_latency_ticks", "write_latency_ticks", "unmap_latency_ticks"):
    assert k in b, k' || fail "bdev_get_iostat shape"

# log_set_level with SPDK's level names (rpc.py log_set_level DEBUG sends {"level": "DEBUG"})
out=$(spdk log_set_level '{"level": "DEBUG"}') || fail "log_set_level DEBUG: $out"
assert_eq "$out" "true" "log_set_level DEBUG result"
assert_eq "$(nvlend log level)" 1 "level after log_set_level DEBUG"
assert_eq "$(spdk log_get_level)" 1 "log_get_level after DEBUG"
spdk bdev_get_bdevs >/dev/null
grep -q 'DEBUG/rpc .*call bdev_get_bdevs' "$DAEMON_LOG" || fail "no debug line after DEBUG"
out=$(spdk log_set_level '{"level": "notice"}') || fail "log_set_level notice: $out"
assert_eq "$(nvlend log level)" 0 "level after log_set_level notice"
spdk log_set_level '{"level": "trace"}' >/dev/null || fail "log_set_level trace"
assert_eq "$(nvlend log level)" 3 "level after log_set_level trace"
err=$(spdk log_set_level '{"level": "LOUD"}') && fail "unknown level name accepted"
assert_contains "$err" '"code": -32602' "unknown level name code"
err=$(spdk log_set_level '{"level": 4}') && fail "level 4 accepted"
assert_contains "$err" '"code": -32602' "level 4 code"
assert_eq "$(nvlend log level)" 3 "level after refused calls"
spdk log_set_level '{"level": "ERROR"}' >/dev/null || fail "log_set_level ERROR"
assert_eq "$(nvlend log level)" 0 "level after log_set_level ERROR"

# errors rpc.py users see: SPDK's codes
err=$(spdk bdev_get_bdevs '{"name": "nosuch"}') && fail "unknown bdev accepted"
assert_contains "$err" '"code": -19' "unknown bdev code (-ENODEV)"
err=$(spdk bdev_malloc_create '{"num_blocks": 8, "block_size": 512, "name": "Malloc7"}') &&
	fail "duplicate accepted"
assert_contains "$err" '"code": -17' "duplicate name code (-EEXIST)"
err=$(spdk bdev_malloc_create '{"num_blocks": 8}') && fail "missing block_size accepted"
assert_contains "$err" '"code": -32602' "invalid params code"
err=$(spdk no_such_method) && fail "unknown method accepted"
assert_contains "$err" '"code": -32601' "unknown method code"

# save_config the rpc.py way, load it into a fresh daemon the rpc.py way
spdk save_config >"$T/spdk_cfg.json" || fail "save_config via framework_get_config"
grep -q '"bdev_aio_create"' "$T/spdk_cfg.json" || fail "saved config lacks the aio bdev"
nvlend --json bdev list >"$T/before.json"
# nvlend's own save_config answers the same shape
nvlend save-config -o "$T/nvl_cfg.json"
/usr/bin/python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a == b, (a, b)' "$T/spdk_cfg.json" "$T/nvl_cfg.json" || fail "save_config differs from rpc.py's"
out=$(spdk bdev_malloc_delete '{"name": "Malloc7"}') || fail "bdev_malloc_delete"
assert_eq "$out" "true" "bdev_malloc_delete result"
out=$(spdk bdev_aio_delete '{"name": "Aio0"}') || fail "bdev_aio_delete"
assert_eq "$out" "true" "bdev_aio_delete result"
err=$(spdk bdev_malloc_delete '{"name": "Malloc7"}') && fail "double delete accepted"
assert_contains "$err" '"code": -19' "deleting a missing bdev"
stop_nvlendd

start_nvlendd
n=$(spdk load_config "$T/spdk_cfg.json") || fail "load_config: $n"
want=$(/usr/bin/python3 -c 'import json,sys; print(sum(len(s["config"] or []) for s in json.load(open(sys.argv[1]))["subsystems"]))' "$T/spdk_cfg.json")
assert_eq "$n" "$want" "calls replayed by load_config"
nvlend --json bdev list >"$T/after.json"
/usr/bin/python3 - "$T/before.json" "$T/after.json" <<'PY' || fail "bdevs differ after load_config"
import json, sys
keys = ("name", "block_size", "num_blocks", "uuid", "product_name")
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert [{k: x[k] for k in keys} for x in a] == [{k: x[k] for k in keys} for x in b], (a, b)
PY
# and -c takes the same file
stop_nvlendd
start_nvlendd -c "$T/spdk_cfg.json"
assert_eq "$(nvlend --json bdev list | json_get '[3]["name"]')" "Uring0" "bdevs after -c"
# spdk_kill_instance ends it; rpc.py tolerates the closed connection
spdk spdk_kill_instance '{"sig_name": "SIGINT"}' >/dev/null || fail "spdk_kill_instance"
wait_until 10 bash -c "! kill -0 $DAEMON_PID" || fail "still running after spdk_kill_instance"
wait "$DAEMON_PID" || fail "exit status after spdk_kill_instance"
pass
