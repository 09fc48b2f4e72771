#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Layering gate (docs/architecture.md "Layering"): which component may
# include which. Each rule is a grep that must find nothing.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
rc=0
rule() { # what, then the command whose output is a violation
	local what=$1 out
	shift
	out=$("$@" 2>/dev/null)
	if [ -n "$out" ]; then
		echo "check_layering: $what:"
		echo "$out" | sed 's/^/    /'
		rc=1
	fi
}
rule "src/nvme includes transport/, nvmf/ or <sys/socket.h>" \
	grep -rnE '#include [<"](transport|nvmf)/|<sys/socket\.h>' src/nvme
rule "src/bdev includes nvme/, nvmf/, transport/ or host/" \
	grep -rnE '#include "(nvme|nvmf|transport|host)/' src/bdev
rule "src/host includes nvmf/ or transport/" \
	grep -rnE '#include "(nvmf|transport)/' src/host
rule "src/util includes another component" \
	sh -c "grep -rnE '#include \"[a-z_]+/' src/util | grep -v '\"util/'"
rule "src/reactor includes bdev/, nvme/, nvmf/ or transport/" \
	grep -rnE '#include "(bdev|nvme|nvmf|transport)/' src/reactor
rule "app/ included outside *_rpc.c glue, app/ itself and tools/" \
	sh -c "grep -rlE '#include \"app/' src | grep -vE '_rpc\\.c\$|^src/app/'"
[ $rc = 0 ] && echo "check_layering: ok"
exit $rc
