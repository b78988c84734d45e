"""The peer of bench_training.py: Fashion-MNIST the way a user would write it by hand.

Loads the idx arrays straight into tensors, trains a plain 2-conv CNN with Adam for whole
epochs until the time budget is crossed, evaluates on the 10k test images and prints one
JSON line (or writes it to ``--json``). Usage::

    python benchmarks/handwritten_cnn.py --budget 180 [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path("/usr/share/datasets/fashion-mnist")


def load_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx file into a numpy array."""
    with gzip.open(path) as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = self.dropout(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=180.0, help="training seconds (whole epochs)")
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    x_train = torch.tensor(load_idx(ROOT / "train-images-idx3-ubyte.gz"), dtype=torch.float32)[:, None] / 255.0
    y_train = torch.tensor(load_idx(ROOT / "train-labels-idx1-ubyte.gz"), dtype=torch.long)
    x_test = torch.tensor(load_idx(ROOT / "t10k-images-idx3-ubyte.gz"), dtype=torch.float32)[:, None] / 255.0
    y_test = torch.tensor(load_idx(ROOT / "t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_start = time.perf_counter()
    epochs = 0
    while epochs < args.max_epochs and time.perf_counter() - train_start < args.budget:
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), 64):
            batch = order[i : i + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        epochs += 1
        print(f"epoch {epochs}: loss {loss.item():.4f} ({time.perf_counter() - train_start:.0f}s)", flush=True)
    train_seconds = time.perf_counter() - train_start
    model.eval()
    with torch.no_grad():
        correct = sum(
            int((model(x_test[i : i + 1000]).argmax(1) == y_test[i : i + 1000]).sum())
            for i in range(0, len(x_test), 1000)
        )
    result = {
        "accuracy": correct / len(x_test),
        "train_seconds": train_seconds,
        "epochs": epochs,
        "seconds": time.perf_counter() - start,
        "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
