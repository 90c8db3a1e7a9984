"""Outputs of the PyTorch DCGAN tutorial's modules (scripts/dcgan_tutorial_keys.py) in eval
mode, on weights and inputs made by a formula that tests/catalog_lowers.rs writes again:
tests/fixtures/dcgan_tutorial_{generator,discriminator}_output.npy.

Tensor number i of the state_dict (num_batches_tracked left out), element j (row-major):
a running variance 1 + 0.5 sin(0.37 j + 1.3 i)^2; another 1-D weight 1 + 0.1 sin(0.37 j + 1.3 i);
another 1-D tensor 0.1 sin(0.37 j + 1.3 i); a kernel 3 sin(0.37 j + 1.3 i) / sqrt(shape[1] shape[2] shape[3]).
The input's element j is sin(0.05 j). In float64, then float32, as the tests build them.
"""
import math
from pathlib import Path

import numpy as np
import torch

from dcgan_tutorial_keys import Discriminator, Generator


def value(key, shape, i):
    j = np.arange(int(np.prod(shape)), dtype=np.float64)
    s = np.sin(0.37 * j + 1.3 * i)
    if key.endswith("running_var"):
        v = 1 + 0.5 * s**2
    elif len(shape) == 1 and key.endswith("weight"):
        v = 1 + 0.1 * s
    elif len(shape) == 1:
        v = 0.1 * s
    else:
        v = 3 * s / math.sqrt(np.prod(shape[1:]))
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


for name, net, input_shape in [("generator", Generator(), (1, 100, 1, 1)), ("discriminator", Discriminator(), (1, 3, 64, 64))]:
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    state = {k: value(k, tuple(net.state_dict()[k].shape), i) for i, k in enumerate(keys)}
    net.load_state_dict(state, strict=False)
    net.eval()
    n = int(np.prod(input_shape))
    x = torch.from_numpy(np.sin(0.05 * np.arange(n, dtype=np.float64)).astype(np.float32).reshape(input_shape))
    with torch.no_grad():
        y = net(x).numpy()
    print(name, y.shape, float(y.mean()), float(y.std()), float(np.abs(y).max()))
    np.save(Path(__file__).parent.parent / f"tests/fixtures/dcgan_tutorial_{name}_output.npy", y)
