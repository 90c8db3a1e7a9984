"""torchvision's figures at sizes other than 224 x 224: the rows of tests/any_size.rs.

Parameters and MACs (FlopCounterMode's FLOPs / 2) of torchvision models with weights=None on
a [1, 3, h, w] input. Gradients stay on: without them nn.MultiheadAttention takes its fused
path, which FlopCounterMode does not count (ViT-B/16 at 224 would read 11.3 GMACs, not 17.6).
torchvision's ViT is square; for other shapes it gets a positions table of the right length
and its patch embedding without the size check (this reproduces its own figures at 384).
"""
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode


def figures(m, x):
    m.eval()
    with FlopCounterMode(display=False) as fc:
        y = m(x)
    return sum(p.numel() for p in m.parameters()), tuple(y.shape), fc.get_total_flops() // 2


def vit(h, w, patch=16):
    m = torchvision.models.vit_b_16()
    m.encoder.pos_embedding = torch.nn.Parameter(torch.zeros(1, (h // patch) * (w // patch) + 1, m.hidden_dim))

    def process(x):
        x = m.conv_proj(x)
        return x.reshape(x.shape[0], m.hidden_dim, -1).permute(0, 2, 1)

    m._process_input = process
    return m


ROWS = [
    ("resnet18", 160, 192), ("resnet18", 40, 56), ("mobilenet_v2", 160, 192), ("mobilenet_v2", 40, 56),
    ("vit_b_16", 160, 320), ("vit_b_16", 384, 384), ("resnet50", 160, 192), ("alexnet", 160, 192),
    ("vgg16", 160, 192), ("googlenet", 160, 192), ("mobilenet_v3_large", 160, 192),
]

for name, h, w in ROWS:
    if name == "vit_b_16":
        m = torchvision.models.vit_b_16(image_size=h) if h == w else vit(h, w)
    elif name == "googlenet":
        m = torchvision.models.googlenet(aux_logits=False, init_weights=False)
    else:
        m = getattr(torchvision.models, name)()
    params, shape, macs = figures(m, torch.zeros(1, 3, h, w))
    print(f'    ("{name}", {h}, {w}, {params:_}, {macs:_}),  # output {list(shape)}')
