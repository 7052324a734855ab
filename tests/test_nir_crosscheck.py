"""Cross-check: the same NIR graph simulated by Norse and by our reference backend gives the same spikes.

Where the discretisations differ, the test aligns them rather than hides them:
- latency: our Graph delays every edge into a neuron by one tick, Norse's edges are
  instantaneous, so our layer at depth L spikes at tick t + L when Norse's spikes at t;
- bias during that latency: our layer at depth L integrates its bias from tick 0, L
  ticks before its input arrives; to_nir writes the start those ticks carry it to as
  NIR's v_reset, which Norse ignores. Starting it at v_init = -L * bias (what
  neurocomp.convert's latency compensation does) makes that start 0, so Norse runs
  our graph exactly;
- thresholds: NIR and Norse fire on v > v_threshold, ours on v >= theta; the importer
  and exporter shift theta by one ulp (nextafter), so both agree on every float;
- precision: Norse casts parameters to float32 (we feed it float64 inputs, so its
  arithmetic runs in float64 on float32 parameter values), so the networks here use
  float32-representable parameters; with float64-only values, potentials within a
  float32 rounding of a threshold would disagree;
- Norse's importer ignores NIR's `r` (input gain) and `v_reset` (it resets to 0) and
  warns; both are 1 and 0 here. Our exporter writes LIF with r = tau/dt, which Norse
  would misread, so the LIF network below is written directly in NIR with r = 1;
- dt: Norse's LIF takes dt at import (v += dt/tau (v_leak - v + I)), ours turns it
  into decay = 1 - dt/tau and a gain dt/tau on the input: the same forward-Euler step.
- CubaLIF: Norse steps the synaptic current first and feeds the new current to the
  membrane in the same step, as our import does, so a recurrent CubaLIF network matches
  spike for spike (Norse's recurrent edge reads the previous tick's spikes: one tick, like
  ours). Norse also gives the synapse the membrane's v_leak (0 here). A bias into a current
  (braille_noDelay_bias_zero) would reach our layer at depth L ticks early, and through a
  decaying current no initial v shifts that away: from_nir refuses it unless
  bias_timing="early" says so.
"""
from __future__ import annotations

import dataclasses
import logging

import nir
import numpy as np
import torch

from neurocomp.backends import reference
from neurocomp.frontend import from_nir, load_nir, to_nir
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output
from neurocomp.ir.layers import lower
from netlib import shared_nir_dir

import norse.torch as norse  # make install adds it (--no-deps); missing, these tests fail rather than skip

NIR_DIR = shared_nir_dir()
DT = 1e-4


def _f32(a: np.ndarray) -> np.ndarray:
    """Values that survive Norse's float32 cast unchanged."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def _norse_spikes(graph: nir.NIRGraph, x: np.ndarray, layers: list[str], dt: float) -> dict[str, np.ndarray]:
    """Norse's spikes per layer, (batch, ticks, n), stepping its GraphExecutor one tick at a time."""
    logging.getLogger().setLevel(logging.ERROR)  # Norse warns about r and v_reset it ignores
    model = norse.from_nir(graph, dt=dt).double()
    state, out = None, {k: [] for k in layers}
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = model(torch.from_numpy(x[:, t].astype(np.float64)), state)
            for k in layers:
                out[k].append(state.cache[k.replace(".", "_")].numpy().copy())  # Norse names nested nodes a_b
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def _bias_compensated(g: Graph) -> Graph:
    """The chain graph with v_init = -depth * bias per IF layer (see the module docstring)."""
    net = lower(g)
    moved = {lay.name: dataclasses.replace(lay.neuron, v_init=-depth * lay.bias().reshape(lay.shape))
             for depth, lay in enumerate(net.layers, 1)}
    return Graph(tuple(moved.get(n.name, n) for n in g.nodes), g.edges)


def _compare(ours: Graph, theirs: nir.NIRGraph, x: np.ndarray, layers: list[str], dt: float) -> None:
    mine = reference.run(lower(ours), {ours.inputs[0].name: x}).spikes
    norse_spikes = _norse_spikes(theirs, x, layers, dt)
    ticks = x.shape[1]
    for depth, name in enumerate(layers, 1):
        assert norse_spikes[name].sum() > 10, f"{name}: too few spikes for a meaningful comparison"
        assert np.array_equal(mine[name][:, depth:], norse_spikes[name][:, : ticks - depth]), name


def test_lif_norse_fixture_matches_norse():
    path = NIR_DIR / "lif_norse.nir"
    assert path.is_file(), f"{path}: the shared NIR fixtures are missing (../shared/data/nir)"
    x = (np.random.default_rng(0).random((4, 300, 1)) < 0.7).astype(np.uint8)
    _compare(load_nir(path, dt=DT), nir.read(path), x, ["1"], DT)


def test_if_affine_network_written_by_us_matches_norse():
    rng = np.random.default_rng(1)
    g = Graph([Input("x", (6,)), Affine("fc1", _f32(rng.normal(0, 1, (8, 6))), _f32(rng.normal(0, 0.1, 8))),
               IF("n1", threshold=_f32(1.3)), Affine("fc2", _f32(rng.normal(0, 1, (4, 8)))), IF("n2", threshold=_f32(0.7)),
               Output("out")],
              [("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "out")])
    x = (rng.random((3, 200, 6)) < 0.5).astype(np.uint8)
    held = _bias_compensated(g)
    assert np.all(to_nir(held).nodes["n1"].v_reset == 0)
    _compare(held, to_nir(held), x, ["n1", "n2"], DT)


def test_lif_affine_network_in_nir_matches_norse():
    rng = np.random.default_rng(2)
    n_in, n_hid, n_out = 5, 7, 3
    lif = lambda n, th: nir.LIF(tau=_f32(np.full(n, 2e-3)), r=np.ones(n), v_leak=np.zeros(n),  # noqa: E731
                                v_threshold=_f32(np.full(n, th)), v_reset=np.zeros(n))
    g = nir.NIRGraph(nodes={"x": nir.Input(input_type=np.array([n_in])),
                            "fc1": nir.Linear(weight=_f32(rng.normal(0.5, 1, (n_hid, n_in)))),
                            "n1": lif(n_hid, 0.1), "fc2": nir.Linear(weight=_f32(rng.normal(0.5, 1, (n_out, n_hid)))),
                            "n2": lif(n_out, 0.05), "out": nir.Output(output_type=np.array([n_out]))},
                     edges=[("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "out")])
    x = (rng.random((3, 300, n_in)) < 0.6).astype(np.uint8)
    _compare(from_nir(g, DT), g, x, ["n1", "n2"], DT)


def test_braille_recurrent_cubalif_fixture_matches_norse():
    path = NIR_DIR / "braille_noDelay_noBias_subtract.nir"
    assert path.is_file(), f"{path}: the shared NIR fixtures are missing (../shared/data/nir)"
    x = (np.random.default_rng(3).random((2, 150, 12)) < 0.3).astype(np.uint8)
    _compare(load_nir(path, dt=DT), nir.read(path), x, ["lif1.lif", "lif2"], DT)
