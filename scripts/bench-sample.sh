#!/usr/bin/env bash
# Tokens a second of `wick sample` on the language models, one position a token (each layer's
# state carried: recurrent h/c, key-value cache) against `--no-cache` (the whole prefix run
# again for every token). Greedy, so the work is the same whatever the weights: untrained ones
# (--random-weights) are used and the prime is token ids. Each line is one run's stderr report.
#
#   cargo build --release && scripts/bench-sample.sh            # RUNS=3 LENGTH=200 by default
#   WICK=target/debug/wick scripts/bench-sample.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WICK=${WICK:-target/release/wick}
RUNS=${RUNS:-3}
LENGTH=${LENGTH:-200}
for spec in char_lstm char_gpt; do
    for cache in "" "--no-cache"; do
        for _ in $(seq "$RUNS"); do
            printf '%-10s %-11s ' "$spec" "${cache:-cache}"
            "$WICK" sample "specs/$spec.wick" --random-weights --prime "36 42 33 34 41 1" \
                --length "$LENGTH" --temperature 0 $cache 2>&1 >/dev/null | grep 'tokens/s'
        done
    done
done
# GPT-2 small (124M parameters, 12 layers): 20 tokens after a 6-token prime.
for cache in "" "--no-cache"; do
    printf '%-10s %-11s ' gpt2_small "${cache:-cache}"
    "$WICK" sample specs/gpt2_small.wick --random-weights --prime "464 2746 318 257 1332 13" \
        --length 20 --temperature 0 $cache 2>&1 >/dev/null | grep 'tokens/s'
done
