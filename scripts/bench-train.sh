#!/usr/bin/env bash
# Training throughput, wick against PyTorch on the CPU, in the same run: builds the Rust
# bench (benches/$BENCH.rs: `train`, the default, `gan` or `infer`), then runs it and
# scripts/bench_${BENCH}_pytorch.py in turn for $ROUNDS rounds (default 2), so load from
# elsewhere on the machine falls on both alike, and prints the median samples/s of each and
# their ratio as a Markdown table.
# PyTorch comes from $PYTHON (default .bench-venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-2}"
BENCH="${BENCH:-train}"
PYTHON="${PYTHON:-$( [ -x .bench-venv/bin/python ] && echo .bench-venv/bin/python || echo python3)}"

bench=$(cargo bench --bench "$BENCH" --no-run --message-format=json 2>/dev/null |
    BENCH="$BENCH" "$PYTHON" -c 'import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == os.environ["BENCH"] and m.get("executable"):
        print(m["executable"])')

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round: wick" >&2
    "$bench" --bench | tail -n 1 >"$results/wick.$round.json"
    echo "round $round: PyTorch" >&2
    "$PYTHON" "scripts/bench_${BENCH}_pytorch.py" 2>/dev/null | tail -n 1 >"$results/torch.$round.json"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

"$PYTHON" - "$results" "$ROUNDS" <<'PY'
import json, statistics, sys
folder, rounds = sys.argv[1], int(sys.argv[2])
def load(side):
    texts = [open(f"{folder}/{side}.{r}.json").read().strip() for r in range(1, rounds + 1)]
    return [json.loads(t) for t in texts if t.startswith("{")]
wick, torch = load("wick"), load("torch")
if not torch:
    print("PyTorch skipped: not installed; wick's figures only")
version = torch[0]["torch"] if torch else "none"
print(f"PyTorch {version}, {rounds} rounds, medians of the rounds' medians")
print()
# The train bench splits a step into phases; the GAN bench times whole iterations.
phases = "forward_ms" in next(iter(wick[0].values()))
def med(runs, key, field):
    return statistics.median(r[key][field] for r in runs)
def split(runs, key):
    if not phases:
        return f"{med(runs, key, 'iteration_ms'):.1f}"
    return " / ".join(f"{med(runs, key, f):.1f}" for f in ("forward_ms", "backward_ms", "optimizer_ms"))
what = "fwd / bwd / opt ms" if phases else "ms per iteration"
# The inference bench also reports resident memory after its passes.
rss = "rss_mib" in next(iter(wick[0].values()))
def mem(runs, key):
    return f" {med(runs, key, 'rss_mib'):.0f} |" if rss and runs else (" - |" if rss else "")
print(f"| workload | wick samples/s | PyTorch samples/s | wick / PyTorch | wick {what} | PyTorch {what} |"
      + (" wick RSS MiB | PyTorch RSS MiB |" if rss else ""))
print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if rss else ""))
def rate(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.2f}"
for key in wick[0]:
    w = med(wick, key, "samples_per_s")
    if torch:
        t = med(torch, key, "samples_per_s")
        print(f"| {key} | {rate(w)} | {rate(t)} | {w / t:.2f} | {split(wick, key)} | {split(torch, key)} |"
              + mem(wick, key) + mem(torch, key))
    else:
        print(f"| {key} | {rate(w)} | - | - | {split(wick, key)} | - |" + mem(wick, key) + mem([], key))
PY
