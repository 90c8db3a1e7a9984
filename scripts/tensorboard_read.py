#!/usr/bin/env python3
"""Read a wick run folder's TensorBoard event files with TensorBoard's own reader.

    pip install tensorboard
    python3 scripts/tensorboard_read.py runs/iris_mlp [--expect-csv]

Prints each tag TensorBoard's EventAccumulator found, with its number of points, its first
and last (step, value), and the images it holds. With --expect-csv, also checks that every
epoch row of the folder's metrics.csv appears as train/ and val/ scalars at the same step
with the same value (to float32 precision), and exits 1 on a difference. Not run in CI: the
project's tests read the files with their own parser (src/train/observe/tensorboard/).
"""
import csv
import math
import os
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    folder = args[0]
    acc = event_accumulator.EventAccumulator(folder, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    print(f"{folder}: {len(tags['scalars'])} scalar tags, {len(tags['images'])} image tags")
    for tag in sorted(tags["scalars"]):
        points = acc.Scalars(tag)
        first, last = points[0], points[-1]
        print(f"  {tag:24} {len(points):5} points  first (step {first.step}, {first.value:.6g})"
              f"  last (step {last.step}, {last.value:.6g})")
    for tag in sorted(tags["images"]):
        images = acc.Images(tag)
        sizes = sorted({(i.width, i.height) for i in images})
        print(f"  {tag:24} {len(images):5} images at steps {[i.step for i in images]}, sizes {sizes}")
    if "--expect-csv" in sys.argv:
        sys.exit(compare(acc, os.path.join(folder, "metrics.csv")))


def compare(acc, path):
    """1 if an epoch figure of metrics.csv is missing from the events or differs."""
    scalars = {t: {p.step: p.value for p in acc.Scalars(t)} for t in acc.Tags()["scalars"]}
    checked, bad = 0, 0
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["kind"] != "epoch":
                continue
            step = int(row["step"])
            for column, value in row.items():
                split, _, name = column.partition("_")
                if split not in ("train", "val") or not value or not name:
                    continue
                got = scalars.get(f"{split}/{name}", {}).get(step)
                want = float(value)
                checked += 1
                if got is None or not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7):
                    bad += 1
                    print(f"  differs: {split}/{name} at step {step}: csv {want}, events {got}")
    print(f"metrics.csv: {checked} epoch figures compared, {bad} differ")
    return 1 if bad or not checked else 0


if __name__ == "__main__":
    main()
