"""Digits SNN: a small CNN trained on scikit-learn's 8x8 digits, converted to IF neurons.

The bundled demo model until the SiamSNN model lands. Conversion here is the plain
data-based method (Diehl et al. 2015): scale every layer by the 99.9th percentile
of its ReLU activations on the training set, threshold 1, reset to zero (the reset
both TrueNorth and Lava's LIF support), analog pixels rate-coded by the host.
Deterministic: fixed seeds and one thread, so the same .pt comes out every time.

    python -m neurocomp.models.digits -o build/models/digits_snn.pt
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output

PERCENTILE = 99.9
EPOCHS = 60


def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); pixels scaled to [0, 1], the last 360 digits held out."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return x[:-360], d.target[:-360], x[-360:], d.target[-360:]


def ann() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def train(x: np.ndarray, y: np.ndarray, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    net = ann()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def convert(net: nn.Sequential, x: np.ndarray) -> Graph:
    """Data-based normalisation: weights scaled by lambda_prev / lambda, biases by 1 / lambda."""
    conv, fc1, fc2 = net[0], net[3], net[5]
    with torch.no_grad():
        a1 = torch.relu(conv(torch.from_numpy(x)))
        a2 = torch.relu(fc1(a1.flatten(1)))
        a3 = fc2(a2)
    lam = [1.0] + [float(np.percentile(a.numpy(), PERCENTILE)) for a in (a1, a2, a3.clamp(min=0))]
    w = lambda layer: layer.weight.detach().double().numpy()  # noqa: E731
    b = lambda layer: layer.bias.detach().double().numpy()  # noqa: E731
    nodes = [
        Input("pixels", (1, 8, 8), encoding="rate"),
        Conv2d("conv1", w(conv) * lam[0] / lam[1], b(conv) / lam[1], stride=2, padding=1), IF("if1"),
        Flatten("flat"),
        Affine("fc1", w(fc1) * lam[1] / lam[2], b(fc1) / lam[2]), IF("if2"),
        Affine("fc2", w(fc2) * lam[2] / lam[3], b(fc2) / lam[3]), IF("if3"),
        Output("digit"),
    ]
    edges = [("pixels", "conv1"), ("conv1", "if1"), ("if1", "flat"), ("flat", "fc1"), ("fc1", "if2"),
             ("if2", "fc2"), ("fc2", "if3"), ("if3", "digit")]
    return Graph(nodes, edges, {"model": "digits-snn", "conversion": f"data-based {PERCENTILE} percentile, IF, reset zero"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="build/models/digits_snn.pt")
    args = ap.parse_args()
    x, y, xt, yt = dataset()
    net = train(x, y)
    with torch.no_grad():
        acc = float((net(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_graph(convert(net, x), out)
    np.savez(out.with_name("digits_test.npz"), input=xt[:, :, :, :].astype(np.float64), labels=yt)
    print(f"ANN test accuracy {acc:.3f}; wrote {out} and {out.with_name('digits_test.npz')}")


if __name__ == "__main__":
    main()
