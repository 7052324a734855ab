"""Digits SNN: an MLP trained on scikit-learn's 8x8 digits, converted by neurocomp.convert.

The bundled demo model. Shaped for TrueNorth: every neuron has fan-in 64, so each
input enters a core on 4 typed axons (256 axons) and a neuron may use 4 weight
levels. The ANN is trained for that: after float training, a quantisation-aware
phase (straight-through) keeps each neuron's weights on {-2a, -a, 0, a, 2a} (a per
neuron), which TrueNorth's 4 levels and Loihi's 8-bit weights both hold exactly.
(A conv front end did not beat the MLP on this split within the fan-in limit.)

Conversion (the defaults both chips run): layer-wise 99.9th-percentile normalisation
(channel-wise would break the per-neuron weight levels), reset to zero (Lava's LIF),
v_init = threshold / 2, latency compensation, light gain + bias calibration, rate-coded
pixels, a non-spiking read-out whose final potential / T approximates the logits.
Deterministic: fixed seeds and one thread, so the same .pt comes out every time.

    python -m neurocomp.models.digits -o build/models/digits_snn.pt [--timesteps 32] [--net cnn]

`--net cnn`: a small CNN trained the ordinary way (no weight levels), as a user would bring it; the
workload of benchmarks/scale_out.py's second sweep (hundreds of TrueNorth cores, where the MLP has 2).
"""
from __future__ import annotations

import argparse
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from neurocomp.convert import ConvertOptions, convert
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import Graph

HIDDEN = 64
EPOCHS, QAT_EPOCHS = 60, 30
LEVELS = 2  # weight magnitudes per sign and neuron: {a, 2a}
TIMESTEPS = 32


def dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); pixels scaled to [0, 1], the last 360 digits held out."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return x[:-360], d.target[:-360], x[-360:], d.target[-360:]


def ann() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def cnn() -> nn.Sequential:
    """conv 1->16 3x3 + BatchNorm, conv 16->16 3x3 stride 2, 2x2 average pool, linear 64->10."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def level_weights(w: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """Each row on a * {-levels, ..., levels}, a = max |row| / levels."""
    a = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
    return a * torch.clamp(torch.round(w / a), -levels, levels)


@contextmanager
def _one_thread() -> Iterator[None]:
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _fit(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, gen: torch.Generator,
         quantised: bool) -> None:
    """AdamW + one-cycle schedule + label smoothing; with `quantised`, forward passes use level_weights (STE)."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    batches = (len(x) + 31) // 32
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * batches)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(32):
            saved = [m.weight.data.clone() for m in linears]
            if quantised:
                for m in linears:
                    m.weight.data = level_weights(m.weight.data)
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx], label_smoothing=0.1).backward()
            for m, w in zip(linears, saved):  # straight-through: the gradient at the levels updates the float weights
                m.weight.data = w
            opt.step()
            sched.step()


def train(x: np.ndarray, y: np.ndarray, seed: int = 0, net: nn.Sequential | None = None,
          levels: bool = True) -> nn.Sequential:
    """The trained ANN (default: ann()); with `levels`, its Linear weights end on the per-neuron levels."""
    with _one_thread():
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = ann() if net is None else net
        xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
        _fit(net, xt, yt, EPOCHS, 3e-3, gen, quantised=False)
        if levels:
            _fit(net, xt, yt, QAT_EPOCHS, 1e-3, gen, quantised=True)
            for m in net:
                if isinstance(m, nn.Linear):
                    m.weight.data = level_weights(m.weight.data)
    return net.eval()


def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def options(timesteps: int = TIMESTEPS) -> ConvertOptions:
    """The conversion both TrueNorth and Loihi (reset to zero) run."""
    return ConvertOptions(reset="zero", timesteps=timesteps)


def to_snn(net: nn.Module, x_train: np.ndarray, timesteps: int = TIMESTEPS, **changes) -> Graph:
    """The converted SNN; `changes` override fields of options(timesteps)."""
    with _one_thread():
        graph = convert(net, x_train, input_shape=x_train.shape[1:], method=replace(options(timesteps), **changes))
    return Graph(graph.nodes, graph.edges, {**graph.metadata, "model": "digits-snn"})


def predict(output: np.ndarray) -> np.ndarray:
    """Class per sample from a run's output: the read-out's last potential, or spike counts."""
    output = np.asarray(output)
    return output[:, -1].argmax(-1) if output.dtype.kind == "f" else output.sum(axis=1).argmax(-1)


def accuracies(graph: Graph, x: np.ndarray, y: np.ndarray, timesteps: int,
               targets: tuple[str, ...] = ("truenorth", "loihi")) -> dict[str, float]:
    """Test accuracy of the float SNN (reference backend) and of each target's emulated program."""
    from neurocomp.backends import emulator, reference
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.ir.layers import lower
    from neurocomp.target import load_target

    net = lower(graph)
    ticks = timesteps + len(net.layers)
    out = {"snn_float": _score(reference.run(net, {"input": x}, ticks), net, y)}
    for name in targets:
        target = load_target(name)
        program = compile_graph(graph, target, CompileOptions(timesteps=timesteps)).program
        out[name] = _score(emulator.run(program, target, {"input": x}, ticks), net, y)
    return out


def _score(result, net, y: np.ndarray) -> float:
    last = net.outputs[0]
    output = result.potentials[last] if last in result.potentials else result.spikes[last]
    return float((predict(output) == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="build/models/digits_snn.pt")
    ap.add_argument("--timesteps", type=int, default=TIMESTEPS, help="T the conversion calibrates for")
    ap.add_argument("--net", choices=("mlp", "cnn"), default="mlp",
                    help="mlp: the demo model, weights on per-neuron levels; cnn: cnn(), trained plainly")
    args = ap.parse_args()
    x, y, xt, yt = dataset()
    net = train(x, y) if args.net == "mlp" else train(x, y, net=cnn(), levels=False)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_graph(to_snn(net, x, args.timesteps), out)
    np.savez(out.with_name("digits_test.npz"), input=xt.astype(np.float64), labels=yt)
    print(f"ANN test accuracy {accuracy(net, xt, yt):.3f}; wrote {out} and {out.with_name('digits_test.npz')}")


if __name__ == "__main__":
    main()
