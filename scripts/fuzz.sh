#!/usr/bin/env bash
# Timed libFuzzer campaigns of the harnesses in Tests/Fuzz/Harnesses (docs/RELIABILITY.md).
#   scripts/fuzz.sh [-t SECONDS] [-n] [harness ...]      (default: 60 s each, every harness; -n: do not build)
# Builds qwen-fuzz with libFuzzer + AddressSanitizer in its own scratch path (.build-fuzz, so .build is never
# touched), then runs each harness on a fresh copy of its seed corpus (.build-fuzz/corpus/<harness>, seeded from
# Tests/Fuzz/corpus/<harness>; Tests/Fuzz/regressions/<harness> is read too). Crashing inputs go to
# .build-fuzz/crashes/<harness>/, logs to .build-fuzz/logs/<harness>.log, the harness's row of the summary table to
# .build-fuzz/logs/<harness>.row. Exits non-zero if any harness crashed. Invocations on different harnesses may run at
# the same time (build once first, then start them with -n).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60 build=1
while getopts "t:nh" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    n) build=0 ;;
    *) echo "usage: scripts/fuzz.sh [-t SECONDS] [-n] [harness ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
# the harness names are the cases of `enum Harness`
mapfile -t all < <(sed -n 's/^    case \([a-z0-9]*\)$/\1/p' Tests/Fuzz/Harnesses/Harness.swift)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  [[ " ${all[*]} " == *" $h "* ]] || { echo "fuzz.sh: unknown harness '$h' (known: ${all[*]})" >&2; exit 2; }
done

fuzzer=.build-fuzz/release/qwen-fuzz
if [ $build = 1 ]; then
  scripts/deps.sh
  # -Xswiftc -O after the release configuration's -Ounchecked: overflow and bounds checks trap, so the fuzzer sees
  # them. -sanitize-coverage: Swift 6.3's -sanitize=fuzzer links libFuzzer but does not instrument Swift code for
  # coverage by itself (only the C targets were: the fuzzer ran blind, "cov: 2" on the gguf harness); the kinds are
  # clang's -fsanitize=fuzzer ones (libFuzzer refuses swiftc's old trace-pc-guard default). The coverage pass runs
  # after the frontend's check of whether an object changed, so a scratch path built with other coverage flags would
  # keep its old objects: -disable-incremental-llvm-codegen.
  QWEN_FUZZ=1 swift build -c release --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -O \
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,indirect-calls,trace-cmp \
    -Xswiftc -Xfrontend -Xswiftc -disable-incremental-llvm-codegen --product qwen-fuzz
fi
[ -x "$fuzzer" ] || { echo "fuzz.sh: $fuzzer is not built (run without -n)" >&2; exit 1; }

mkdir -p .build-fuzz/logs
# LeakSanitizer: leaks inside system libraries that we cannot fix are suppressed (docs/RELIABILITY.md): libvorbis leaks
# its vorbis_info when libsndfile fails to open a malformed Ogg/Vorbis stream (xiph/vorbis#125)
printf 'leak:libvorbis.so\n' >.build-fuzz/lsan.supp
export LSAN_OPTIONS=suppressions=$PWD/.build-fuzz/lsan.supp
rows=()
failed=0
for h in "${harnesses[@]}"; do
  corpus=.build-fuzz/corpus/$h crashes=.build-fuzz/crashes/$h log=.build-fuzz/logs/$h.log
  rm -rf "$corpus" "$crashes"
  mkdir -p "$corpus" "$crashes"
  [ -d Tests/Fuzz/corpus/$h ] && cp Tests/Fuzz/corpus/$h/* "$corpus"/ 2>/dev/null || true
  extra=()
  [ -d Tests/Fuzz/regressions/$h ] && extra=(Tests/Fuzz/regressions/$h)
  echo "fuzz.sh: $h for $seconds s (log $log)"
  # -rss_limit_mb: the harnesses cap their inputs' sizes, so 2 GB is a leak or a missed bound; -timeout: one input
  # taking 30 s is a hang (typical inputs take milliseconds; the margin is for campaigns run at idle priority, whose
  # wall-clock time stretches while other work has the CPU)
  # SWIFT_BACKTRACE=enable=no: on a crash, Swift's own backtracer would read the process's memory under ASan and
  # add a second, unrelated ASan report (memserver_read) after libFuzzer's
  status=0 t0=$SECONDS
  SWIFT_BACKTRACE=enable=no QWEN_FUZZ_HARNESS=$h "$fuzzer" "$corpus" "${extra[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
    -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1 &
  pid=$!
  wait "$pid" || status=$?
  # the harness's scratch folder, left behind when the process died on a crash (its exit handler did not run)
  rm -rf /dev/shm/qwen-fuzz-"$pid"-* /tmp/qwen-fuzz-"$pid"-*
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  elapsed=$((SECONDS - t0))
  # crash-*, leak-*, timeout-*, oom-*: the campaign stopped there; slow-unit-*: an input over 10 s (reported only)
  found=$(find "$crashes" -type f ! -name 'slow-unit-*' | wc -l)
  slow=$(find "$crashes" -type f -name 'slow-unit-*' | wc -l)
  files=$(find "$corpus" -type f | wc -l)
  if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then
    failed=1
    echo "fuzz.sh: $h failed (exit $status), see $log and $crashes" >&2
    grep -m3 -E "ERROR|qwen-fuzz:|SUMMARY" "$log" >&2 || true
  fi
  rows+=("$(printf '%-12s %8s %12s %8s %8s %6s' "$h" "$elapsed" "${executions:-?}" "$files" "$found" "$slow")")
  printf '%s\n' "${rows[-1]}" >".build-fuzz/logs/$h.row"
done

printf '\n%-12s %8s %12s %8s %8s %6s\n' harness seconds executions corpus crashes slow
printf '%s\n' "${rows[@]}"
exit $failed
