"""Small networks shared by the tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, Readout, SumPool2d


def integer_cnn(seed: int = 0, reset: str = "zero") -> Graph:
    """Integer weights (<= 3 levels per neuron), integer thresholds and biases: exactly representable on both targets."""
    rng = np.random.default_rng(seed)
    wc = rng.choice([-1.0, 1.0, 2.0], size=(3, 2, 3, 3))
    wa = rng.choice([-1.0, 1.0], size=(4, 27))
    nodes = [Input("x", (2, 6, 6)), Conv2d("conv", wc, np.array([0.0, 1.0, -1.0]), padding=1),
             IF("n1", threshold=3.0, reset=reset), SumPool2d("pool", 2), Flatten("flat"),
             Affine("fc", wa, np.array([0.0, 1.0, -1.0, 0.0])), IF("n2", threshold=np.array([2.0, 2.0, 3.0, 2.0]), reset=reset),
             Output("out")]
    edges = [("x", "conv"), ("conv", "n1"), ("n1", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "n2"), ("n2", "out")]
    return Graph(nodes, edges)


def tiny(weights=(1.0, 1.0), threshold: float = 2.0) -> Graph:
    """Two inputs, one IF neuron: small enough to count events by hand."""
    nodes = [Input("x", (2,)), Affine("fc", np.array([weights])), IF("n", threshold=threshold), Output("out")]
    return Graph(nodes, [("x", "fc"), ("fc", "n"), ("n", "out")])


def random_spikes(shape: tuple[int, ...], batch: int, ticks: int, rate: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((batch, ticks) + shape) < rate).astype(np.uint8)


def shared_nir_dir() -> Path:
    """../shared/data/nir beside the checkout (where CI puts it); /work/shared as a fallback for temp clones."""
    beside = Path(__file__).resolve().parents[2] / "shared" / "data" / "nir"
    return beside if beside.is_dir() else Path("/work/shared/data/nir")


def wide_readout(n: int = 5000, seed: int = 0) -> Graph:
    """n spiking inputs -> 3 read-out neurons with integer weights (<= 4 levels each): wider than any core's axons."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-2.0, -1.0, 1.0, 2.0], size=(3, n))
    return Graph([Input("x", (n,), "spikes"), Affine("fc", w, np.array([1.0, 0.0, -1.0])), Readout("r"), Output("out")],
                 [("x", "fc"), ("fc", "r"), ("r", "out")])
