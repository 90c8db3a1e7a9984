#!/usr/bin/env python3
"""Cross-checks `wick export` with onnxruntime: for each spec, initialise weights
(`wick compile -o`), export them (`wick export`), run the same random inputs through
`wick run` and through onnxruntime, and print the largest difference relative to the
largest output magnitude. Not part of CI: needs `pip install onnxruntime onnx numpy`.

    python3 scripts/onnx_check.py [--wick target/debug/wick] [SPEC ...]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

# Catalog specs and the small dims they are checked at.
SPECS = {
    "seed_mlp": "N=3",
    "iris_mlp": "N=3",
    "digits_cnn": "N=2",
    "digits_images": "N=2",
    "digits_multitask": "N=2",
    "lenet5": "N=2",
    "alexnet": "N=1",
    "resnet18": "N=2,H=32,W=48",
    "resnet34": "N=1,H=64,W=64",
    "resnet50": "N=1,H=64,W=64",
    "resnext50_32x4d": "N=1,H=64,W=64",
    "se_resnet50": "N=1,H=64,W=64",
    "googlenet": "N=1,H=64,W=64",
    "inception_v1_3a": "N=2",
    "googlenet_inception3a_torchvision": "N=2",
    "mobilenet_v2": "N=1,H=64,W=64",
    "mobilenet_v3_large": "N=1,H=64,W=64",
    "unet_milesial": "N=1,H=64,W=64",
    "conv_autoencoder": "N=2,H=32,W=32",
    "dcgan_generator": "N=2",
    "dcgan_discriminator": "N=2",
    "dcgan_digits": "N=2",
    "wgan_gp_digits": "N=2",
    "cgan_digits": "N=2",
    "vit_b_16": "N=1",
    "swin_t": "N=1",
    "transformer_default": "N=2,S=3,T=4",
    "transformer_reverse": "N=2",
    "char_gpt": "N=2,T=8",
    "gpt2_small": "N=1,L=8",
    "bert_base_like_encoder": "N=1,L=8",
    "char_llama": "N=2,T=8",
    "char_lstm": "N=2,T=7",
    "char_rnn_lstm": "N=2,T=7",
    "gru_seq2seq": "N=2,S=5,T=4",
    "seq2seq_reverse": "N=2",
    "stylegan_mapping": "N=2",
    "stylegan_digits": "N=6",
    "stylegan_digits:Generator": "N=6",
    "vae": "N=2",
    "vae:ConvVAEDecoder": "N=2",
    "cgan_digits:Generator": "N=2",
    "dcgan_digits:Generator": "N=2",
    "wgan_gp_digits:Generator": "N=2",
}

# Outputs drawn at random (`randn_like`): onnxruntime cannot draw candle's stream, so only
# their shapes are compared.
RANDOM = {"vae": {"recon"}}

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    """The tensors of a safetensors file, by key (the format is an 8-byte header length,
    a JSON header, then the raw little-endian data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[key] = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{r.stderr}")
    return r


def check(wick, name, bind, tmp):
    # `spec:Model` checks a model other than the spec's last.
    spec, _, model_name = name.partition(":")
    path = f"specs/{spec}.wick"
    pick = ["--model", model_name] if model_name else []
    stem = name.replace(":", ".")
    weights = os.path.join(tmp, f"{stem}.safetensors")
    model_path = os.path.join(tmp, f"{stem}.onnx")
    run([wick, "compile", path, "--bind", bind, "-o", weights, "--seed", "3"] + pick)
    run([wick, "export", path, "--bind", bind, "--weights", weights, "-o", model_path] + pick)
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds, args = {}, []
    for inp in session.get_inputs():
        shape = inp.shape
        if inp.type == "tensor(int64)":
            x = rng.integers(0, 3, size=shape).astype(np.int64)
        else:
            x = rng.standard_normal(shape).astype(np.float32)
        feeds[inp.name] = x
        file = os.path.join(tmp, f"{stem}.{inp.name}.npy")
        np.save(file, x)
        args += ["--input", f"{inp.name}={file}"]
    out_file = os.path.join(tmp, f"{stem}.out.safetensors")
    run([wick, "run", path, "--bind", bind, "--weights", weights, "--raw", "--device", "cpu",
         "--output", out_file] + pick + args)
    ours = read_safetensors(out_file)
    theirs = session.run(None, feeds)
    worst = 0.0
    for meta, got in zip(session.get_outputs(), theirs):
        expected = ours[meta.name]
        assert got.shape == expected.shape, (name, got.shape, expected.shape)
        if meta.name in RANDOM.get(name, ()):
            continue
        scale = max(float(np.abs(expected).max()), 1e-6)
        worst = max(worst, float(np.abs(got - expected).max()) / scale)
    return worst, len(model.graph.node)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wick", default="target/debug/wick")
    p.add_argument("specs", nargs="*", default=list(SPECS))
    a = p.parse_args()
    failed = 0
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}")
    print(f"{'spec':<26} {'bind':<16} {'nodes':>6} {'max rel diff':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in a.specs:
            bind = SPECS.get(spec, "N=2")
            try:
                worst, nodes = check(a.wick, spec, bind, tmp)
            except Exception as e:  # one spec's failure is reported, the others still run
                print(f"{spec:<26} {bind:<16} failed: {e}")
                failed += 1
                continue
            ok = worst <= 1e-4
            failed += not ok
            print(f"{spec:<26} {bind:<16} {nodes:>6} {worst:>13.2e}{'' if ok else '  > 1e-4'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
