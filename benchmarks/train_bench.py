"""Training throughput: medgap's data pipeline (uint8 cache -> augmentation -> normalised tensors, balanced
sampler, DataLoader: what `medgap finetune` trains with) against the same model stepping on ready tensors, in
one run.

    .venv/bin/python benchmarks/train_bench.py [--size 128] [--steps 20]

Target (issue 4): pipeline overhead <= 10%.
"""

from __future__ import annotations

import argparse
import time

import torch

from medgap.data import make_loader
from medgap.models import apply_strategy, create_model, preprocessing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    n = args.batch * args.steps
    images = torch.randint(0, 256, (n, 3, args.size, args.size), dtype=torch.uint8)
    targets = torch.randint(0, 3, (n,))
    groups = (torch.arange(n) // 8).numpy()  # clips of 8 frames: the balanced sampler works as in a real run
    pre = preprocessing("efficientnet_lite0", "imagenet")
    model = apply_strategy(create_model("efficientnet_lite0", "imagenet", num_classes=3), "full")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    ready = [((images[i:i + args.batch].float() - 127.5) / 127.5, targets[i:i + args.batch]) for i in range(0, n, args.batch)]
    # the loader `medgap finetune` trains with: balanced sampler, augmentation, normalisation
    loader = make_loader(images, targets.numpy(), groups, pre["mean"], pre["std"], batch_size=args.batch,
                         training=True)
    model.train()
    step(*ready[0])  # warm-up
    best_ready = best_pipe = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        for x, y in ready:
            step(x, y)
        best_ready = min(best_ready, time.perf_counter() - t)
        t = time.perf_counter()
        for x, y, _ in loader:
            step(x, y)
        best_pipe = min(best_pipe, time.perf_counter() - t)
    r_ready, r_pipe = n / best_ready, n / best_pipe
    print(f"EfficientNet-Lite0 full fine-tuning, {args.size}px, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"ready tensors:        {r_ready:8.1f} images/s")
    print(f"medgap data pipeline: {r_pipe:8.1f} images/s")
    print(f"pipeline overhead:    {100 * (1 - r_pipe / r_ready):8.1f}% (target <= 10%)")


if __name__ == "__main__":
    main()
