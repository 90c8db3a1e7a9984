"""PyTorch's side of the inference benchmark (benches/infer.rs): the same catalog networks
(torchvision's resnet50 and vit_b_16; GPT-2 small written in torch.nn as specs/gpt2_small.wick
writes it) run forward under `torch.inference_mode()` on the CPU, samples per second as one
JSON line keyed like the Rust bench's. Exits 0 with a message when PyTorch is not installed."""

import json
import os
import statistics
import sys
import time

try:
    import torch
    import torchvision
    from torch import nn
except ImportError:
    print("skipped: PyTorch or torchvision not installed")
    sys.exit(0)

REPEATS = 5
MIN_PASSES = 2
REPEAT_TIME = 2.0
WARMUP_PASSES = 2


class GPT2Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class GPT2Small(nn.Module):
    def __init__(self, vocab=50257, positions=1024, d=768, layers=12, heads=12):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(positions, d)
        self.h = nn.ModuleList(GPT2Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.h:
            x = block(x, mask)
        return self.ln_f(x) @ self.wte.weight.t()


# (key, model maker, input maker), as WORKLOADS in benches/infer.rs.
WORKLOADS = [
    ("resnet50_b1", torchvision.models.resnet50, lambda: torch.randn(1, 3, 224, 224)),
    ("resnet50_b8", torchvision.models.resnet50, lambda: torch.randn(8, 3, 224, 224)),
    ("vit_b_16_b1", torchvision.models.vit_b_16, lambda: torch.randn(1, 3, 224, 224)),
    ("gpt2_small_t128", GPT2Small, lambda: torch.randint(0, 50257, (1, 128))),
]


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def measure(make_model, make_input):
    model = make_model().eval()
    x = make_input()
    batch = x.shape[0]

    def repeat():
        passes, start = 0, time.perf_counter()
        while passes < MIN_PASSES or time.perf_counter() - start < REPEAT_TIME:
            model(x).reshape(-1)[0].item()
            passes += 1
        return passes, time.perf_counter() - start

    with torch.inference_mode():
        for _ in range(WARMUP_PASSES):
            model(x)
        runs = [repeat() for _ in range(REPEATS)]
    ms = statistics.median_high(t * 1e3 / n for n, t in runs)
    return {"samples_per_s": round(batch * 1e3 / ms, 3), "iteration_ms": round(ms, 3), "rss_mib": round(rss_mib())}


def main():
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    picked = sys.argv[1:]
    results = {key: measure(make, inp) for key, make, inp in WORKLOADS if not picked or key in picked}
    for key, r in results.items():
        print(f"{key}: {r['samples_per_s']:.2f} samples/s, {r['iteration_ms']:.1f} ms, RSS {r['rss_mib']} MiB")
    results["torch"] = torch.__version__
    print(json.dumps(results))


if __name__ == "__main__":
    main()
