#!/usr/bin/env bash
# W1 A/B across source trees: this tree's bench script, each tree's code.
#
#   bench/ab_w1.sh sqlite|postgres ROUNDS TREE [TREE ...]
#   e.g. bench/ab_w1.sh sqlite 10 /work/wt-old /work/wt-bench
#
# Each TREE is a checkout with its own `make setup` (.venv). Every round runs
# bench/legato_bench.py --workloads W1 (the file next to this script) once per tree, with
# that tree's interpreter and PYTHONPATH=TREE/src, so only the legato code differs; the
# order rotates from round to round. One line per trial (tree, time, 1-minute load,
# per_step_ms), then each tree's best and median and their ratio to the first tree.
set -euo pipefail
kind=$1; rounds=$2; shift 2
trees=("$@")
script="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/legato_bench.py"
out=$(mktemp)
n=${#trees[@]}
for ((round = 0; round < rounds; round++)); do
  for ((k = 0; k < n; k++)); do
    tree=${trees[$(((round + k) % n))]}
    load=$(cut -d' ' -f1 /proc/loadavg)
    ms=$(cd /tmp && PYTHONPATH="$tree/src" "$tree/.venv/bin/python" "$script" \
      --db-kind "$kind" --workloads W1 2>/dev/null |
      python3 -c 'import json,sys; print(next(r["value"] for r in map(json.loads, sys.stdin) if r["metric"] == "per_step_ms"))')
    echo "$tree $kind $(date +%T) load=$load per_step_ms=$ms" | tee -a "$out"
  done
done
python3 - "$out" "${trees[@]}" <<'PY'
import statistics, sys
lines = open(sys.argv[1]).read().split("\n")
trees = sys.argv[2:]
ms = {t: [float(l.split("per_step_ms=")[1]) for l in lines if l.split(" ", 1)[0] == t] for t in trees}
base = trees[0]
for t in trees:
    best, median = min(ms[t]), statistics.median(ms[t])
    ratio = f"  vs {base}: best {best / min(ms[base]):.3f}, median {median / statistics.median(ms[base]):.3f}"
    print(f"{t}: {len(ms[t])} trials, best {best:.4f} ms, median {median:.4f} ms{ratio if t != base else ''}")
PY
rm -f "$out"
