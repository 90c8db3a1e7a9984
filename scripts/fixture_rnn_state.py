"""Writes the `lstm_state` and `gru_state` fixtures (tests/fixtures): recurrent layers started
from a given, non-zero initial state, with PyTorch's outputs and gradients.

    pip install torch numpy safetensors   # CPU is enough
    python3 scripts/fixture_rnn_state.py  # from the repository root

Same layout as the other fixtures (tests/pytorch_fixtures.rs reads them): parameters under their
state_dict keys, `input.*`, `output.*`, a random `probe.*` per output (the loss is the sum of
output * probe), `grad.*` per parameter and `grad_input.*` per float input, h0 and c0 included.
"""
import json

import torch
from safetensors.torch import save_file

FIXTURES = "tests/fixtures"


def write(name, summary, module, fc, inputs, run, seed):
    torch.manual_seed(seed + 1)
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    outputs = run(module, fc, leaves)
    probes = {k: torch.randn_like(v) for k, v in outputs.items()}
    loss = sum((outputs[k] * probes[k]).sum() for k in outputs)
    loss.backward()
    tensors = {}
    for prefix, m in (("", module), ("", fc)):
        for k, v in m.state_dict().items():
            tensors[k] = v.detach().clone()
    for k, v in leaves.items():
        tensors[f"input.{k}"] = v.detach().clone()
        tensors[f"grad_input.{k}"] = v.grad.detach().clone()
    for k, v in outputs.items():
        tensors[f"output.{k}"] = v.detach().contiguous().clone()
        tensors[f"probe.{k}"] = probes[k].contiguous()
    for m in (module, fc):
        for k, p in m.named_parameters():
            tensors[f"grad.{k}"] = p.grad.detach().clone()
    # state_dict keys carry the module's label.
    tensors = {rename(k, module, fc): v for k, v in tensors.items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{FIXTURES}/{name}.safetensors")
    meta = {
        "name": name,
        "summary": summary,
        "mode": "eval",
        "seed": seed,
        "inputs": [{"key": f"input.{k}", "shape": list(v.shape)} for k, v in inputs.items()],
        "outputs": [{"key": f"output.{k}", "shape": list(v.shape)} for k, v in outputs.items()],
        "loss": "sum over outputs of (output * probe).sum()",
        "tolerances": {
            "forward": "max abs error <= 1e-5 * (1 + max abs of the reference tensor)",
            "gradients": "max abs error <= 1e-4 * (1 + max abs of the reference tensor)",
        },
        "generated_with": {"torch": torch.__version__, "script": "scripts/fixture_rnn_state.py"},
    }
    with open(f"{FIXTURES}/{name}.json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def rename(key, module, fc):
    for prefix in ("input.", "grad_input.", "output.", "probe."):
        if key.startswith(prefix):
            return key
    grad = key.startswith("grad.")
    bare = key[len("grad."):] if grad else key
    label = "fc" if bare in ("weight", "bias") else module.label
    return ("grad." if grad else "") + f"{label}.{bare}"


def main():
    torch.manual_seed(21)
    lstm = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    lstm.label = "lstm"
    fc = torch.nn.Linear(12, 3)
    inputs = {"x": torch.randn(3, 4, 5), "h0": torch.randn(4, 3, 6), "c0": torch.randn(4, 3, 6)}

    def run_lstm(m, fc, t):
        seq, (h, c) = m(t["x"], (t["h0"], t["c0"]))
        return {"y": fc(seq), "h_n": h, "c_n": c}

    write("lstm_state", "2-layer bidirectional LSTM(5 -> 6, batch_first) from a random (h0, c0), "
          "then Linear(12, 3) on every step; input [3,4,5], h0 and c0 [4,3,6]",
          lstm, fc, inputs, run_lstm, 21)

    torch.manual_seed(22)
    gru = torch.nn.GRU(5, 6, num_layers=2)
    gru.label = "gru"
    fc = torch.nn.Linear(6, 3)
    inputs = {"x": torch.randn(4, 3, 5), "h0": torch.randn(2, 3, 6)}

    def run_gru(m, fc, t):
        seq, h = m(t["x"], t["h0"])
        return {"y": fc(seq), "h_n": h}

    write("gru_state", "2-layer GRU(5 -> 6), sequence first, from a random h0, then Linear(6, 3) on "
          "every step; input [4,3,5], h0 [2,3,6]", gru, fc, inputs, run_gru, 22)


if __name__ == "__main__":
    main()
