#!/bin/sh
# The long fuzz run: each target, one after another (one process), under nice,
# until RUNS executions or SECONDS seconds, whichever comes first. Prints
# libFuzzer's final stats per target and keeps each log and corpus in OUT.
#
#   tests/fuzz/long_run.sh [-r RUNS] [-t SECONDS] [-o OUT] [target ...]
#
# Defaults: 10000000 runs, 3600 s, OUT=build-fuzz/fuzz-long, every target.
# Run from the repository root after building the targets (README.md).
set -eu
runs=10000000
secs=3600
out=build-fuzz/fuzz-long
while getopts r:t:o: opt; do
  case $opt in
    r) runs=$OPTARG ;;
    t) secs=$OPTARG ;;
    o) out=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- submit_request subscribe_request bridge_line checkpoint merkle config \
  policy_parser
for t in "$@"; do
  seeds=tests/fuzz/corpus/$t
  dict=
  case $t in
    submit_request) len=8192 ;;
    subscribe_request) len=1024 ;;
    bridge_line) len=8192 dict=tests/fuzz/envelope_json.dict ;;
    checkpoint) len=2048 dict=tests/fuzz/checkpoint.dict ;;
    merkle) len=4096 ;;
    config) len=8192 dict=tests/fuzz/config.dict ;;
    policy_parser) len=4096 dict=policy/fuzz/policy.dict seeds=policy/fuzz/corpus ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  mkdir -p "$out/$t/corpus"
  rc=0
  nice build-fuzz/bin/${t}_fuzz ${dict:+-dict=$dict} -max_len=$len -runs=$runs \
    -max_total_time=$secs -print_final_stats=1 -artifact_prefix="$out/$t/" \
    "$out/$t/corpus" "$seeds" >"$out/$t/log" 2>&1 || rc=$?
  printf '%s rc=%s %s\n' "$t" "$rc" \
    "$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$out/$t/log" | tr '\n' ' ')"
  grep -E '^(Done|==[0-9]+==ERROR|SUMMARY)' "$out/$t/log" || true
done
