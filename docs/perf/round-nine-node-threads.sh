#!/bin/bash
# CPU a request of each process of `slotbus bench node`'s front, split by thread (node-MainThread, node-V8Worker:
# V8's GC and compiler threads, …), over one wrk run (docs/perf/round-nine-node.md).
#   docs/perf/round-nine-node-threads.sh <tree> <variant> [seconds]
# <tree>: a checkout with node_modules (express, piscina) and prebuilds/; <variant>: as `bench node --only` takes.
# Needs $SLOTBUS_NODE (Node >= 26.1), bun and wrk. Prints "<pid> <thread name> <ms a request>" per process and
# thread name, the front's pid first; cpu-prof flags etc. may follow as NODE_FLAGS.
set -eu
TREE=$(realpath "$1") V=$2 SECS=${3:-5}
B=$(mktemp -d /tmp/slotbus-nodethreads-XXXX)
trap 'exec 9>&- 2>/dev/null; rm -rf "$B"' EXIT
(cd "$TREE" && bun build bench/node/front.ts bench/node/worker.ts bench/node/thread.ts --target=node --splitting \
  --root bench/node --outdir "$B" >/dev/null)
mkfifo "$B/in"
SLOTBUS_LIB="$TREE/prebuilds/linux-x64/libslotbus.so" NODE_NO_WARNINGS=1 \
  "$SLOTBUS_NODE" ${NODE_FLAGS:-} "$B/front.js" "$V" "$TREE" <"$B/in" >"$B/out" 2>"$B/err" &
FRONT=$!
exec 9>"$B/in" # the front ends with its stdin
for _ in $(seq 150); do grep -q '^ready' "$B/out" && break; sleep 0.2; done
PORT=$(sed -n 's/^ready port=\([0-9]*\).*/\1/p' "$B/out")
PIDS="$FRONT $(sed -n 's/.*workers=\([0-9,]*\).*/\1/p' "$B/out" | tr , ' ')"
URL=http://127.0.0.1:$PORT/report
threads() { for p in $PIDS; do for t in /proc/$p/task/*; do echo "$p/$(basename "$t")/$(tr ' ' _ <"$t/comm") $(cut -d' ' -f1 "$t/schedstat")"; done; done | sort; }
wrk -t1 -c16 -d2s -s "$TREE/bench/lib/ids.lua" "$URL" -- 64 >/dev/null # warm-up
threads >"$B/t0"
wrk -t1 -c16 -d"${SECS}s" -s "$TREE/bench/lib/ids.lua" "$URL" -- 64 >"$B/wrk"
threads >"$B/t1"
N=$(awk '/requests in/ {print $1}' "$B/wrk")
echo "$V: $N requests in ${SECS} s ($(cut -d' ' -f1-3 /proc/loadavg) load)"
# threads that ended in between are left out
join "$B/t0" "$B/t1" |
  awk -v n="$N" '{split($1, k, "/"); t[k[1]" "k[3]] += ($3 - $2) / 1e6} END {for (x in t) printf "%s %.3f\n", x, t[x] / n}' |
  awk '$3 > 0' | sort -k1,1n -k2
exec 9>&-
wait "$FRONT" || true
