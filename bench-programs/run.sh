#!/usr/bin/env bash
# Whole-program benchmarks of sundown, each program a real process:
#
# * shutdown: 10 000 idle tasks, then SIGTERM; the time from SIGTERM to the process's
#   exit and its peak RSS, for the same program written by hand (tokio + tokio-util),
#   with #[sundown::graceful_main], and with tokio-graceful-shutdown;
# * build: clean `cargo build --release` of a hello world with #[graceful_main] against
#   one with #[tokio::main] + tokio-util;
# * spawn: spawn + join 200 000 trivial tasks from a task, a #[graceful_main] program's
#   rewritten tokio::spawn (tracked on the process scope) against TaskTracker::spawn.
#
#   bench-programs/run.sh             # all three (about 7 minutes on 2 cores)
#   bench-programs/run.sh shutdown    # one of them
#   ROUNDS=21 WARMUP=1 TASKS=10000 BUILD_RUNS=3 bench-programs/run.sh
set -euo pipefail
cd "$(dirname "$0")"

ROUNDS=${ROUNDS:-15}
WARMUP=${WARMUP:-1}
TASKS=${TASKS:-10000}
BUILD_RUNS=${BUILD_RUNS:-3}
what=${1:-all}
case $what in
all | shutdown | build | spawn) ;;
*)
    echo "usage: $0 [all|shutdown|build|spawn]" >&2
    exit 2
    ;;
esac

cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
echo "machine: nproc=$(nproc), CPU \"${cpu:-unknown}\", $(rustc -V)"
if commit=$(git -C .. rev-parse --short HEAD 2>/dev/null); then
    if git -C .. diff --quiet HEAD -- runtime macros 2>/dev/null; then
        echo "sundown: commit $commit"
    else
        echo "sundown: commit $commit, with uncommitted changes in runtime/ or macros/"
    fi
fi
echo

cargo build --release --locked --quiet
driver=./target/release/driver

if [[ $what == all || $what == shutdown ]]; then
    "$driver" shutdown --rounds "$ROUNDS" --warmup "$WARMUP" --tasks "$TASKS"
    echo
fi
if [[ $what == all || $what == spawn ]]; then
    "$driver" spawn --processes "${SPAWN_PROCESSES:-6}" --rounds "${SPAWN_ROUNDS:-15}"
    echo
fi
if [[ $what == all || $what == build ]]; then
    "$driver" build-times --runs "$BUILD_RUNS" hello-sundown hello-tokio
fi
