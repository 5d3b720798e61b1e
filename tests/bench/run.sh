#!/usr/bin/env bash
# `make bench`: runs the benchmarks and writes docs/benchmarks.md with this machine's numbers.
# BENCH_TMPDIR chooses the disk the stores live on (default: $TMPDIR or /tmp).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD_DIR=${BUILD_DIR:-build}
export TMPDIR=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for bench in eventstore_bench relay_bench contact_bench pipeline_bench activity_bench; do
  echo "== $bench"
  "$BUILD_DIR/tests/bench/$bench" --benchmark_out="$out/$bench.json" --benchmark_out_format=json
done
/usr/bin/python3 tests/bench/report.py --tmpdir "$TMPDIR" --out docs/benchmarks.md "$out"/*.json
echo "== metrics_bench"
echo >> docs/benchmarks.md
"$BUILD_DIR/tests/bench/metrics_bench" 2>/dev/null | sed -n '/^## metrics-service/,$p' >> docs/benchmarks.md
echo "== system_bench (crm-loadgen against the whole system, about 10 minutes)"
PYTHONPATH=$BUILD_DIR/python:tests/system CRM_BUILD_DIR=$BUILD_DIR /usr/bin/python3 tests/bench/system_bench.py --out docs/benchmarks.md \
  --raw-json "$out/eventstore_bench.json" "$out/relay_bench.json"
echo "wrote docs/benchmarks.md"
