"""PyTorch's side of the training benchmark (benches/train.rs): the same five workloads,
shapes and optimizers on the CPU, full steps on synthetic data, samples per second as one
JSON line keyed like the Rust bench's. Exits 0 with a message when PyTorch is not installed."""

import json
import os
import statistics
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print("skipped: PyTorch not installed")
    sys.exit(0)

REPEATS = 5
MIN_STEPS = 3
REPEAT_TIME = 1.5
WARMUP_STEPS = 3


def seed_mlp():
    sizes = [784, 200, 100, 50, 25, 50, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


class TinyEncoderClassifier(nn.Module):
    def __init__(self, vocab=1000, d=128, heads=4, layers=2, ff=512, seq=64, classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d)
        self.positions = nn.Parameter(torch.randn(seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        h = self.embedding(tokens) + self.positions[: tokens.shape[1]]
        return self.head(self.encoder(h).mean(dim=1))


class Residual(nn.Module):
    """Two 3x3 convolutions, batch norm after each (`bn`), ReLU between; the input added back
    before the last ReLU (benches/specs/digits_resnet.wick's `Residual`)."""

    def __init__(self, c, bn):
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(c)) if bn else nn.Identity
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=not bn), norm()
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=not bn), norm()

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + x)


def digits_resnet(bn=True):
    def conv(cin, cout, stride=1):
        norm = [nn.BatchNorm2d(cout)] if bn else []
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not bn), *norm, nn.ReLU()]

    return nn.Sequential(
        *conv(1, 32), Residual(32, bn), *conv(32, 64, stride=2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64, 10),
    )


def nesterov(p):
    return torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True)


# (key, model, batch, input maker, classes, optimizer maker), as WORKLOADS in benches/train.rs.
WORKLOADS = [
    ("seed_mlp", seed_mlp, 100, lambda n: torch.randn(n, 784), 10,
     lambda p: torch.optim.SGD(p, lr=0.01)),
    ("small_cnn", small_cnn, 64, lambda n: torch.randn(n, 1, 28, 28), 10,
     lambda p: torch.optim.Adam(p, lr=1e-3)),
    ("tiny_encoder", TinyEncoderClassifier, 32, lambda n: torch.randint(0, 1000, (n, 64)), 2,
     lambda p: torch.optim.AdamW(p, lr=1e-3)),
    ("digits_resnet", digits_resnet, 64, lambda n: torch.randn(n, 1, 8, 8), 10, nesterov),
    ("digits_resnet_plain", lambda: digits_resnet(bn=False), 64, lambda n: torch.randn(n, 1, 8, 8), 10,
     nesterov),
]


def measure(make_model, batch, make_input, classes, make_optimizer):
    torch.manual_seed(0)
    model = make_model().train()
    opt = make_optimizer(model.parameters())
    x, y = make_input(batch), torch.randint(0, classes, (batch,))
    loss_fn = nn.CrossEntropyLoss()
    split = [0.0, 0.0, 0.0]

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.item()  # as the Rust bench reads its loss back
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        split[0] += t1 - t0
        split[1] += t2 - t1
        split[2] += t3 - t2

    for _ in range(WARMUP_STEPS):
        step()
    rates, phases = [], []
    for _ in range(REPEATS):
        split[:] = [0.0, 0.0, 0.0]
        steps = 0
        while steps < MIN_STEPS or sum(split) < REPEAT_TIME:
            step()
            steps += 1
        rates.append(steps * batch / sum(split))
        phases.append([s * 1e3 / steps for s in split])
    f, b, u = (statistics.median(p[i] for p in phases) for i in range(3))
    return {"samples_per_s": statistics.median(rates), "forward_ms": f, "backward_ms": b,
            "optimizer_ms": u}


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    out = {key: measure(*rest) for key, *rest in WORKLOADS}
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
