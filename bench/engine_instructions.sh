#!/usr/bin/env bash
# Instructions per engine action, which unlike time do not depend on what else the
# machine is doing: valgrind counts the action benchmark at 2,000 and at 6,000
# actions (1,000 players) and divides the difference by 4,000.
#
#     bench/engine_instructions.sh                     # this checkout
#     PYTHONPATH=/other/checkout/src bench/engine_instructions.sh
set -eu
cd "$(dirname "$0")/.."
count() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
    .venv/bin/python bench/engine_bench.py --actions "$1" --ticks 10 --json 2>&1 >/dev/null |
    awk '/I *refs/ {gsub(",", "", $4); print $4}'
}
a=$(count 2000)
b=$(count 6000)
echo "instructions per action: $(((b - a) / 4000))"
