"""Writes tests/fixtures/onnx/small_cnn.onnx, the foreign ONNX file wick's import tests read:
a small CNN with batch norm, exported by torch.onnx (not by wick), its batch a dynamic axis.

    python3 scripts/onnx-fixture.py

Needs torch and onnx; the tests themselves read only the committed file.
"""

import torch
from torch import nn


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def main():
    torch.manual_seed(0)
    model = SmallCnn().eval()
    # Statistics and affine values as training leaves them: torch.onnx writes equal constants
    # once (the initial ones and zeros), which would hide the batch norm's own tensors.
    with torch.no_grad():
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.5, 0.5)
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 16, 16)
    torch.onnx.export(
        model,
        (x,),
        "tests/fixtures/onnx/small_cnn.onnx",
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch_size"}, "logits": {0: "batch_size"}},
        opset_version=17,
        dynamo=False,
        # Keep batch norm a node of its own (eval mode would fold it into the convolution).
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )


if __name__ == "__main__":
    main()
