"""GAN training throughput in PyTorch on the CPU: the networks and the loop of benches/gan.rs.

One iteration: the discriminator on a real batch and on a fake batch G(z) (detached), BCE with
real targets 0.9, its update; then the generator's update on the same fake batch with targets
1; both losses read back (`.item()`), as wick's program reports them. Adam 2e-4, betas
(0.5, 0.999). Synthetic images in [-1, 1]. Prints one JSON line: per workload samples/s and
ms per iteration, medians over the repeats.
"""

import json
import os
import statistics
import time

import torch
from torch import nn

REPEATS, MIN_STEPS, REPEAT_TIME, WARMUP_STEPS = 5, 3, 1.5, 2
BATCH = 64


def digits():
    """specs/dcgan_digits.wick."""
    g = nn.Sequential(
        nn.ConvTranspose2d(32, 64, 2, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 1, 2), nn.Flatten())
    return g, d, (32, 1, 1), (1, 8, 8), nn.BCEWithLogitsLoss()


def dcgan_64():
    """specs/dcgan_generator.wick and specs/dcgan_discriminator.wick."""
    def up(cin, cout, stride=2, padding=1):
        return [nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    def down(cin, cout, bn=True):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else []) + \
            [nn.LeakyReLU(0.2)]
    g = nn.Sequential(*up(100, 512, 1, 0), *up(512, 256), *up(256, 128), *up(128, 64),
                      nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(*down(3, 64, False), *down(64, 128), *down(128, 256), *down(256, 512),
                      nn.Conv2d(512, 1, 4, bias=False), nn.Sigmoid())
    return g, d, (100, 1, 1), (3, 64, 64), nn.BCELoss()


WORKLOADS = [("dcgan_digits", digits), ("dcgan_64", dcgan_64)]


def measure(make):
    torch.manual_seed(0)
    g, d, latent, image, bce = make()
    g.train(), d.train()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    reals = [torch.rand(BATCH, *image) * 2 - 1 for _ in range(4)]
    done = [0]

    def iteration():
        real = reals[done[0] % len(reals)]
        done[0] += 1
        z = torch.randn(BATCH, *latent)
        fake = g(z)
        opt_d.zero_grad(set_to_none=True)
        real_scores = d(real)
        fake_scores = d(fake.detach())
        loss_d = bce(real_scores, torch.full_like(real_scores, 0.9)) + \
            bce(fake_scores, torch.zeros_like(fake_scores))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        scores = d(fake)
        loss_g = bce(scores, torch.ones_like(scores))
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()

    for _ in range(WARMUP_STEPS):
        iteration()
    rates, times = [], []
    for _ in range(REPEATS):
        steps, start = 0, time.perf_counter()
        while steps < MIN_STEPS or time.perf_counter() - start < REPEAT_TIME:
            iteration()
            steps += 1
        elapsed = time.perf_counter() - start
        rates.append(steps * BATCH / elapsed)
        times.append(elapsed * 1e3 / steps)
    return {"samples_per_s": statistics.median(rates), "iteration_ms": statistics.median(times)}


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    out = {key: measure(make) for key, make in WORKLOADS}
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
