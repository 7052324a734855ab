"""NIR interop with the frameworks themselves, both ways: a network built in snnTorch, Sinabs, SpikingJelly,
Norse or Rockpool, written by that framework's own NIR exporter and read by neurocomp.from_nir, spikes as that
framework simulates it; and a network written by neurocomp.to_nir, read by the framework's own NIR importer and
simulated by it. docs/NIR.md states the reading rules these tests hold neurocomp to.

Alignment (the same in every test): our Graph delays each edge into a neuron by one tick, NIR edges are
instantaneous, so our layer at depth L spikes at tick t + L when the framework's spikes at t (`_ours`).
from_nir holds each bias back until its layer's input arrives, so biases need no alignment here.

Precision: snnTorch and Sinabs simulate in float32 (their spikes are float32 tensors), SpikingJelly and Norse are
run in float64. Weights are random normals (no exact threshold ties, where a float32 and a float64 potential could
fall on different sides) or, where named, small dyadic numbers that both precisions hold exactly.

Every framework here is installed by `make install` (Makefile: --no-deps, see pyproject's `interop` extra); a
missing one fails its tests at import, it is never skipped.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import nir
import norse.torch as norse
import numpy as np
import pytest
from rockpool.nn.combinators import Sequential as RockpoolSequential
from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
from rockpool.nn.modules.torch.nir import from_nir as rockpool_import
from rockpool.nn.modules.torch.nir import to_nir as rockpool_export
import sinabs
from sinabs.activation import MembraneReset, SingleSpike
import sinabs.layers as sinabs_layers
import snntorch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir as snntorch_export
from snntorch.import_nir import import_from_nir as snntorch_import
from spikingjelly.activation_based import functional as sj_functional
from spikingjelly.activation_based import layer as sj_layer
from spikingjelly.activation_based import neuron as sj_neuron
from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_export
from spikingjelly.activation_based.nir_exchange import import_from_nir as sj_import
import torch

from neurocomp.backends import reference
from neurocomp.errors import GraphError
from neurocomp.frontend import from_nir, load_nir, save_nir, to_nir
from neurocomp.ir.graph import IF, LIF, Affine, Flatten, Graph, Input, Output, SumPool2d
from neurocomp.ir.layers import lower


T, BATCH = 80, 3
Spikes = dict[str, np.ndarray]


def _spikes(n_in: int, seed: int, p: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random((BATCH, T, n_in)) < p).astype(np.float32)


def _ours(graph: Graph, x: np.ndarray, layers: list[str]) -> Spikes:
    """Our reference spikes per layer, shifted back by the layer's depth (its latency in ticks)."""
    out = reference.run(lower(graph), {graph.inputs[0].name: x.astype(np.float64)}).spikes
    return {name: out[name][:, depth:].astype(np.float64) for depth, name in enumerate(layers, 1)}


def _assert_same(ours: Spikes, theirs: Spikes) -> None:
    """Identical spikes on every tick both cover; each layer must fire enough to mean something."""
    for name, mine in ours.items():
        other = np.asarray(theirs[name], dtype=np.float64)[:, : mine.shape[1]]
        assert other.sum() > 20, f"{name}: too few spikes ({other.sum()}) for a meaningful comparison"
        np.testing.assert_array_equal(mine, other, err_msg=name)


def _recorded(model: torch.nn.Module, names: list[str], step: Callable[[torch.Tensor], object], x: np.ndarray,
              dtype: torch.dtype = torch.float32) -> Spikes:
    """Spikes of the named submodules, (batch, ticks, ...), stepping the model one tick at a time."""
    seen: dict[str, list[np.ndarray]] = {n: [] for n in names}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda _m, _i, out, n=n: seen[n].append((out[0] if isinstance(out, tuple) else out).detach().numpy().copy()))
        for n in names]
    with torch.no_grad():
        for t in range(x.shape[1]):
            step(torch.from_numpy(x[:, t]).to(dtype))
    for h in hooks:
        h.remove()
    return {n: np.stack(v, axis=1).reshape(x.shape[0], x.shape[1], -1) for n, v in seen.items()}


def _set_weights(model: torch.nn.Module, seed: int, dyadic: bool = False) -> None:
    """Random weights (mean 0.3, so layers fire) and small biases; dyadic: multiples of 1/16."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                w = rng.normal(0.3, 0.5, tuple(m.weight.shape))
                b = rng.normal(0.0, 0.1, tuple(m.bias.shape))
                m.weight[:] = torch.from_numpy(np.round(w * 16) / 16 if dyadic else w)
                m.bias[:] = torch.from_numpy(np.round(b * 16) / 16 if dyadic else b)


def _mlp(hidden: Callable[[int], torch.nn.Module]) -> torch.nn.Sequential:
    """Linear(6, 8), neuron, Linear(8, 4), neuron."""
    return torch.nn.Sequential(torch.nn.Linear(6, 8), hidden(8), torch.nn.Linear(8, 4), hidden(4))


def _our_net(neuron: Callable[[str], IF | LIF]) -> Graph:
    """Our own Affine(6 -> 8), neuron, Affine(8 -> 4), neuron, weights multiples of 1/16. No biases: to_nir
    writes ours as acting from tick 0, which other readers start with the input (docs/NIR.md)."""
    rng = np.random.default_rng(5)
    w1 = np.round(rng.normal(0.3, 0.5, (8, 6)) * 16) / 16
    w2 = np.round(rng.normal(0.3, 0.5, (4, 8)) * 16) / 16
    return Graph([Input("x", (6,)), Affine("fc1", w1), neuron("n1"), Affine("fc2", w2), neuron("n2"), Output("y")],
                 [("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "y")])


# ---------------------------------------------------------------- snnTorch: dt = 1e-4, its exporter's and reader's


SNN_DT = 1e-4


def _leaky(n: int, reset: str = "zero") -> torch.nn.Module:
    """snnTorch's LIF, per-neuron beta and threshold (a scalar threshold trips its exporter's type inference)."""
    return snntorch.Leaky(beta=torch.full((n,), 0.75), threshold=torch.full((n,), 0.5), init_hidden=True,
                          reset_mechanism=reset)


def _synaptic(n: int) -> torch.nn.Module:
    """reset_delay=False: with its default (True) snnTorch also zeroes the step after a spike, which its exporter
    does not write and NIR cannot say (snnTorch's own reader builds Synaptic with reset_delay=False)."""
    return snntorch.Synaptic(alpha=torch.full((n,), 0.5), beta=torch.full((n,), 0.75), threshold=torch.full((n,), 0.5),
                             init_hidden=True, reset_mechanism="zero", reset_delay=False)


def _snntorch_run(model: torch.nn.Module, names: list[str], x: np.ndarray) -> Spikes:
    snn_utils.reset(model)
    return _recorded(model, names, model, x)


def test_snntorch_leaky_mlp_reads_as_snntorch_runs_it(tmp_path: Path) -> None:
    """Dyadic weights and beta = 0.75: potentials land exactly on the threshold, so the float32 r = tau/dt must
    read as gain 1 and 1 - dt/tau as 0.75 exactly (within the file's rounding), or ties would flip."""
    net = _mlp(_leaky)
    _set_weights(net, 1, dyadic=True)
    nir.write(tmp_path / "snn.nir", snntorch_export(net, torch.zeros(1, 6), ignore_dims=[0]))
    x = _spikes(6, 2)
    _assert_same(_ours(load_nir(tmp_path / "snn.nir", dt=SNN_DT), x, ["1", "3"]), _snntorch_run(net, ["1", "3"], x))


def test_snntorch_synaptic_mlp_reads_as_snntorch_runs_it() -> None:
    """CubaLIF: the new current feeds v in the same step, as ours. With its biases, which flow into a decaying
    current that no starting potential holds back until the input arrives, the file is refused (docs/NIR.md);
    without them the spikes are snnTorch's."""
    net = _mlp(_synaptic)
    _set_weights(net, 3)
    with pytest.raises(GraphError, match="'1'.*synaptic current.*bias_timing='early'"):
        from_nir(snntorch_export(net, torch.zeros(1, 6), ignore_dims=[0]), SNN_DT)
    with torch.no_grad():
        net[0].bias.zero_(), net[2].bias.zero_()
    x = _spikes(6, 4)
    graph = from_nir(snntorch_export(net, torch.zeros(1, 6), ignore_dims=[0]), SNN_DT)
    _assert_same(_ours(graph, x, ["1", "3"]), _snntorch_run(net, ["1", "3"], x))


def test_snntorch_conv_net_reads_as_snntorch_runs_it() -> None:
    """Conv2d, Leaky, AvgPool2d (its 1/4 folded into the Linear after it), Flatten, Linear, Leaky."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), _leaky_conv((2, 6, 6)), torch.nn.AvgPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(18, 4), _leaky(4))
    _set_weights(net, 6, dyadic=True)
    x = _spikes(36, 7).reshape(BATCH, T, 1, 6, 6)
    graph = from_nir(snntorch_export(net, torch.zeros(1, 1, 6, 6), ignore_dims=[0]), SNN_DT)
    ours = _ours(graph, x, ["1", "5"])
    theirs = _snntorch_run(net, ["1", "5"], x)
    _assert_same({k: v.reshape(BATCH, v.shape[1], -1) for k, v in ours.items()}, theirs)


def _leaky_conv(shape: tuple[int, ...]) -> torch.nn.Module:
    return snntorch.Leaky(beta=torch.full(shape, 0.75), threshold=torch.full(shape, 0.5), init_hidden=True,
                          reset_mechanism="zero")


def test_snntorch_recurrent_leaky_reads_as_snntorch_runs_it() -> None:
    """RLeaky: its recurrent Linear reads the previous step's spikes, our recurrent edge takes one tick too."""
    rleaky = snntorch.RLeaky(beta=torch.full((8,), 0.75), threshold=torch.full((8,), 0.5), linear_features=8,
                             init_hidden=True, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), rleaky, torch.nn.Linear(8, 4), _leaky(4))
    _set_weights(net, 51, dyadic=True)
    with torch.no_grad():
        w_rec = np.round(np.random.default_rng(52).normal(0, 0.3, (8, 8)) * 16) / 16
        rleaky.recurrent.weight[:] = torch.from_numpy(w_rec)
        rleaky.recurrent.bias.zero_()
    graph = from_nir(snntorch_export(net, torch.zeros(1, 6), ignore_dims=[0]), SNN_DT)
    assert ("1.lif", "1.w_rec") in graph.edges and ("1.w_rec", "1.lif") in graph.edges
    x = _spikes(6, 53)
    theirs = _snntorch_run(net, ["1", "3"], x)
    _assert_same(_ours(graph, x, ["1.lif", "3"]), {"1.lif": theirs["1"], "3": theirs["3"]})


@pytest.mark.parametrize("lif_r", ["tau/dt", "1"])
def test_our_lif_mlp_reads_in_snntorch_as_ours_runs_it(lif_r: str) -> None:
    """to_nir's LIF with r = tau/dt is unit gain to snnTorch's reader; with r = 1 it moves the threshold by the
    gain it finds (dt/tau) and the weights carry tau/dt. Threshold 0.55 is never hit exactly by dyadic
    potentials, so float32 (snnTorch) and float64 (ours) agree."""
    graph = _our_net(lambda name: LIF(name, threshold=np.array(0.55), decay=np.array(0.75)))
    model = snntorch_import(to_nir(graph, SNN_DT, lif_r))
    x = _spikes(6, 8)
    _assert_same(_ours(graph, x, ["n1", "n2"]), _snntorch_run(model, ["n1", "n2"], x))


def test_snntorch_refuses_our_if() -> None:
    """Our IF is written by NIR's equation (r = 1/dt: v += dt r I = I); snnTorch's reader takes only r = 1
    (and would make it a Leaky with beta 0.9), so it refuses: loudly, not differently."""
    graph = _our_net(lambda name: IF(name, threshold=np.array(1.0)))
    with pytest.raises(AssertionError, match="r != 1 not supported"):
        snntorch_import(to_nir(graph, SNN_DT))


def test_snntorch_subtract_reset_is_not_in_its_file() -> None:
    """snnTorch's exporter writes a reset-by-subtraction Leaky (its default) exactly as a reset-to-zero one:
    NIR resets to v_reset, so no reader can tell. The file is read as NIR says (reset to zero); build Leaky
    layers with reset_mechanism="zero" to exchange them."""
    def written(reset: str) -> dict[str, np.ndarray]:
        g = snntorch_export(_mlp(lambda n: _leaky(n, reset)), torch.zeros(1, 6), ignore_dims=[0])
        return {f"{k}.{p}": np.asarray(getattr(n, p)) for k, n in g.nodes.items() for p in ("tau", "r", "v_reset")
                if hasattr(n, p)}
    zero, subtract = written("zero"), written("subtract")
    assert zero.keys() == subtract.keys() and all(np.array_equal(zero[k], subtract[k]) for k in zero)


# ---------------------------------------------------------------- Sinabs: discrete steps (dt = 1), float32


def _sinabs_if(n: int) -> torch.nn.Module:
    """IAF as NIR's IF: one spike per step, reset to zero, no floor. Sinabs's defaults (several spikes per step,
    reset by subtraction) are not in its file (test_sinabs_defaults_are_not_in_its_file)."""
    return sinabs_layers.IAFSqueeze(batch_size=BATCH, spike_fn=SingleSpike, reset_fn=MembraneReset(), min_v_mem=None)


def _sinabs_lif(n: int) -> torch.nn.Module:
    return sinabs_layers.LIFSqueeze(tau_mem=torch.tensor(4.0), batch_size=BATCH, spike_threshold=torch.tensor(0.5),
                                    spike_fn=SingleSpike, reset_fn=MembraneReset(), min_v_mem=None)


def _sinabs_run(model: torch.nn.Module, names: list[str], x: np.ndarray) -> Spikes:
    """Sinabs squeezes time into the batch: one call with (batch * ticks, ...), spikes back as (batch, ticks, n)."""
    for m in model.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
    whole = _recorded(model, names, lambda xs: model(xs.reshape((-1,) + xs.shape[2:])), x[:, None])
    return {n: v.reshape(x.shape[0], x.shape[1], -1) for n, v in whole.items()}


def _sinabs_export(model: torch.nn.Module, sample: torch.Tensor) -> nir.NIRGraph:
    """Sinabs's exporter traces the squeezed layers with a full (batch * ticks) sample."""
    model(sample)
    return sinabs.to_nir(model, sample)


def test_sinabs_iaf_mlp_reads_as_sinabs_runs_it() -> None:
    net = _mlp(_sinabs_if)
    _set_weights(net, 11)
    x = _spikes(6, 12)
    graph = from_nir(_sinabs_export(net, torch.zeros(BATCH * T, 6)), 1e-3)
    _assert_same(_ours(graph, x, ["1", "3"]), _sinabs_run(net, ["1", "3"], x))


def test_sinabs_lif_reads_with_the_exp_integrator_at_one_step() -> None:
    """Sinabs's LIF steps v = a v + (1 - a) I, a = exp(-1/tau_mem), tau in steps, and writes tau with r = 1:
    NIR's LIF solved exactly over a step with the input held (integrator="exp") at dt = 1. Forward Euler
    (the default) reads the same file as a = 1 - 1/tau, which is not what Sinabs ran."""
    net = _mlp(_sinabs_lif)
    _set_weights(net, 13)
    x = _spikes(6, 14)
    written = _sinabs_export(net, torch.zeros(BATCH * T, 6))
    theirs = _sinabs_run(net, ["1", "3"], x)
    _assert_same(_ours(from_nir(written, 1.0, integrator="exp"), x, ["1", "3"]), theirs)
    euler = _ours(from_nir(written, 1.0), x, ["1", "3"])
    assert not np.array_equal(euler["3"], theirs["3"][:, : euler["3"].shape[1]])


def test_sinabs_conv_net_reads_as_sinabs_runs_it() -> None:
    """Conv2d, IAF, SumPool2d, Flatten, Linear, IAF: the cnn_sinabs.nir kind of network, small."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), _sinabs_if(0), sinabs_layers.SumPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(18, 4), _sinabs_if(4))
    _set_weights(net, 15)
    x = _spikes(36, 16).reshape(BATCH, T, 1, 6, 6)
    graph = from_nir(_sinabs_export(net, torch.zeros(BATCH * T, 1, 6, 6)), 1e-3)
    ours = _ours(graph, x, ["1", "5"])
    _assert_same({k: v.reshape(BATCH, v.shape[1], -1) for k, v in ours.items()}, _sinabs_run(net, ["1", "5"], x))


def test_sinabs_defaults_are_not_in_its_file() -> None:
    """Sinabs's default IAF (several spikes a step, reset by subtraction) writes the very file of a NIR IF, so the
    file is read as NIR says; exchange IAF layers built with SingleSpike and MembraneReset."""
    def written(**kw: object) -> dict[str, np.ndarray]:
        net = torch.nn.Sequential(torch.nn.Linear(6, 8), sinabs_layers.IAFSqueeze(batch_size=BATCH, **kw))
        g = _sinabs_export(net, torch.zeros(BATCH * T, 6))
        return {f"{k}.{p}": np.asarray(getattr(n, p)) for k, n in g.nodes.items()
                for p in ("r", "v_threshold", "v_reset") if hasattr(n, p)}
    nir_like, default = written(spike_fn=SingleSpike, reset_fn=MembraneReset(), min_v_mem=None), written()
    assert nir_like.keys() == default.keys() and all(np.array_equal(nir_like[k], default[k]) for k in default)


def test_our_if_net_reads_in_sinabs_as_ours_runs_it() -> None:
    """Sinabs's reader ignores r and v_reset and builds its default IAF (reset by subtraction, several spikes a
    step, a floor at -threshold). On a network whose potentials reach the threshold exactly and never pass it or
    go below zero (integer weights 0/1, one input spike a tick, one source per second-layer neuron) those agree
    with NIR's IF, and Sinabs runs ours spike for spike; with overshoot it would not, which NIR does not allow."""
    w1 = (np.random.default_rng(17).random((8, 6)) < 0.5).astype(np.float64)
    w2 = np.zeros((4, 8))
    w2[np.arange(4), 2 * np.arange(4)] = 1.0  # n2[i] listens to n1[2i] only
    # zero biases: Sinabs reads nir.Affine only (a nir.Linear, what to_nir writes for no bias, fails its loader)
    g = Graph([Input("x", (6,)), Affine("fc1", w1, np.zeros(8)), IF("n1", threshold=np.array(2.0)),
               Affine("fc2", w2, np.zeros(4)),
               IF("n2", threshold=np.array(2.0)), Output("y")],
              [("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "y")])
    x = np.zeros((BATCH, T, 6), dtype=np.float32)
    rng = np.random.default_rng(18)
    for b in range(BATCH):
        x[b, np.arange(T), rng.integers(0, 6, T)] = rng.random(T) < 0.8
    model = sinabs.from_nir(to_nir(g), batch_size=BATCH)
    _assert_same(_ours(g, x, ["n1", "n2"]), _sinabs_run(model, ["n1", "n2"], x))


# ---------------------------------------------------------------- SpikingJelly: dt = 1e-4 (its default), float64


SJ_DT = 1e-4
SJ_NEURONS: dict[str, Callable[[int], torch.nn.Module]] = {
    "IFNode": lambda n: sj_neuron.IFNode(v_threshold=1.0, v_reset=0.0),
    "LIFNode": lambda n: sj_neuron.LIFNode(tau=4.0, v_threshold=0.5, v_reset=0.0),  # r = 1: v += (I - v)/tau
    "LIFNode(decay_input=False)": lambda n: sj_neuron.LIFNode(tau=4.0, decay_input=False, v_threshold=1.0, v_reset=0.0),
}


def _sj_run(model: torch.nn.Module, names: list[str], x: np.ndarray) -> Spikes:
    model.double()
    sj_functional.reset_net(model)
    return _recorded(model, names, model, x, torch.float64)


def _stateful_run(model: torch.nn.Module, names: list[str], x: np.ndarray,
                  dtype: torch.dtype = torch.float64) -> Spikes:
    """A nirtorch-built model (SpikingJelly's and Norse's readers): it takes and returns its state each step."""
    state: list[object] = [None]

    def step(xt: torch.Tensor) -> None:
        state[0] = model(xt, state[0])[1]
    return _recorded(model.to(dtype), names, step, x, dtype)


@pytest.mark.parametrize("kind", SJ_NEURONS)
def test_spikingjelly_mlp_reads_as_spikingjelly_runs_it(kind: str) -> None:
    """IF (r = 1/dt: v += dt r I = I) and LIF with r = 1 or r = tau/dt. SpikingJelly fires on v >= threshold,
    NIR on v > threshold: with random float weights no potential lands on a threshold exactly."""
    net = torch.nn.Sequential(sj_layer.Linear(6, 8), SJ_NEURONS[kind](8), sj_layer.Linear(8, 4), SJ_NEURONS[kind](4))
    _set_weights(net, 21)
    x = _spikes(6, 22)
    graph = from_nir(sj_export(net, torch.zeros(BATCH, 6)), SJ_DT)
    _assert_same(_ours(graph, x, ["_1", "_3"]), {"_" + k: v for k, v in _sj_run(net, ["1", "3"], x).items()})


def test_spikingjelly_conv_net_with_pools_reads_as_spikingjelly_runs_it() -> None:
    """Conv2d, IF, AvgPool2d into an IF (no weighted op follows: its 1/4 goes into that IF's threshold), Flatten,
    Linear, IF. SpikingJelly fires on v >= threshold but writes it as NIR's v > threshold, so a potential exactly
    on a threshold would read differently, and nothing in the file says so (docs/NIR.md): random weights, and a
    pooled threshold (0.6) that sums of quarters never hit."""
    net = torch.nn.Sequential(sj_layer.Conv2d(1, 2, 3, padding=1), SJ_NEURONS["IFNode"](0), sj_layer.AvgPool2d(2),
                              sj_neuron.IFNode(v_threshold=0.6, v_reset=0.0), sj_layer.Flatten(),
                              sj_layer.Linear(18, 4), SJ_NEURONS["IFNode"](4))
    _set_weights(net, 23)
    x = _spikes(36, 24, 0.6).reshape(BATCH, T, 1, 6, 6)
    graph = from_nir(sj_export(net, torch.zeros(BATCH, 1, 6, 6)), SJ_DT)
    ours = _ours(graph, x, ["_1", "_3", "_6"])
    theirs = _sj_run(net, ["1", "3", "6"], x)
    _assert_same({k: v.reshape(BATCH, v.shape[1], -1) for k, v in ours.items()},
                 {"_" + k: v for k, v in theirs.items()})


@pytest.mark.parametrize("neuron, lif_r", [
    (lambda name: IF(name, threshold=np.array(1.0)), "tau/dt"),
    (lambda name: LIF(name, threshold=np.array(0.5), decay=np.array(0.75)), "tau/dt"),
    (lambda name: LIF(name, threshold=np.array(0.5), decay=np.array(0.75)), "1"),
], ids=["IF", "LIF", "LIF-r1"])
def test_our_mlp_reads_in_spikingjelly_as_ours_runs_it(neuron: Callable[[str], IF | LIF], lif_r: str,
                                                      tmp_path: Path) -> None:
    """to_nir's IF (r = 1/dt) and LIF (r = tau/dt, or r = 1 with tau/dt in the weights) are what SpikingJelly's
    reader asks for, here through a file (save_nir's default is r = tau/dt). We write the threshold one ulp below
    ours (our v >= theta is NIR's v > theta^-); SpikingJelly's v >= theta^- differs only on a potential of
    exactly theta^-, which dyadic weights never make."""
    graph = _our_net(neuron)
    if lif_r == "tau/dt":
        save_nir(graph, tmp_path / "ours.nir", SJ_DT)
        written = nir.read(tmp_path / "ours.nir")
    else:
        written = to_nir(graph, SJ_DT, lif_r)
    model = sj_import(written, dt=SJ_DT)
    x = _spikes(6, 25)
    _assert_same(_ours(graph, x, ["n1", "n2"]), _stateful_run(model, ["n1", "n2"], x))


# ---------------------------------------------------------------- Norse: its dt (1e-3) at run time, float64


NORSE_DT = 1e-3


def _norse_mlp(cell: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    return norse.SequentialState(torch.nn.Linear(6, 8), cell(), torch.nn.Linear(8, 4), cell())


def _norse_export(model: torch.nn.Module) -> nir.NIRGraph:
    """Norse 1.1 writes tau = dt / tau_mem_inv (seconds times dt); dt=1 writes NIR's tau = 1 / tau_mem_inv. Its
    sample keeps a batch dimension of 1 in the Input's type, which from_nir drops."""
    return norse.to_nir(model, torch.zeros(1, 6), dt=1.0)


@pytest.mark.parametrize("cell", [
    lambda: norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(250.0), v_th=torch.tensor(0.3))),
    lambda: norse.IAFCell(norse.IAFParameters(v_th=torch.tensor(0.7))),
], ids=["LIFBoxCell", "IAFCell"])
def test_norse_mlp_reads_as_norse_runs_it(cell: Callable[[], torch.nn.Module]) -> None:
    """LIF (r = 1, forward Euler at Norse's dt) and IF (r = 1: per step, v += I)."""
    model = _norse_mlp(cell)
    _set_weights(model, 31)
    written = _norse_export(model)
    assert written.nodes["input"].input_type["input"].tolist() == [1, 6]
    x = _spikes(6, 32)
    graph = from_nir(written, NORSE_DT)
    _assert_same(_ours(graph, x, ["1", "3"]), _stateful_run(model, ["1", "3"], x))


def _norse_import_run(graph: Graph, dt: float, names: list[str], x: np.ndarray, **kw: str) -> Spikes:
    logging.getLogger().setLevel(logging.ERROR)  # Norse logs the r and v_reset it ignores (1 and 0 here)
    return _stateful_run(norse.from_nir(to_nir(graph, dt, **kw), dt=dt), names, x)


def test_our_if_net_reads_in_norse_as_ours_runs_it() -> None:
    """Norse's IF is v += I whatever r says; ours is written with r = 1/dt, which NIR's equation reads as that.
    Norse casts the threshold to float32, which rounds ours (one ulp below theta, so that NIR's v > theta^- is
    our v >= theta) back to theta: a threshold that dyadic potentials never hit exactly keeps that out."""
    graph = _our_net(lambda name: IF(name, threshold=np.array(1.05)))
    x = _spikes(6, 33)
    _assert_same(_ours(graph, x, ["n1", "n2"]), _norse_import_run(graph, NORSE_DT, ["n1", "n2"], x))


def test_our_lif_net_reads_in_norse_with_unit_r() -> None:
    """Norse's reader ignores r (it logs a warning), so the default writes LIF with r = 1 and tau/dt folded into
    the weights before it (4x here, exact for dyadic weights), as lif_r="1" does; r = tau/dt is read 4x too weak."""
    graph = _our_net(lambda name: LIF(name, threshold=np.array(0.55), decay=np.array(0.75)))
    x = _spikes(6, 34)
    ours = _ours(graph, x, ["n1", "n2"])
    for lif_r in ("auto", "1"):
        _assert_same(ours, _norse_import_run(graph, NORSE_DT, ["n1", "n2"], x, lif_r=lif_r))
    assert _norse_import_run(graph, NORSE_DT, ["n1"], x, lif_r="tau/dt")["n1"].sum() < ours["n1"].sum() / 2


def test_unit_r_needs_weights_to_fold_into() -> None:
    """lif_r="1" refuses a LIF whose input has no weights to take its gain; the default writes that one with
    r = tau/dt and folds the others."""
    g = Graph([Input("x", (2, 4, 4)), SumPool2d("pool", (2, 2)), LIF("n", threshold=np.array(1.0), decay=np.array(0.5)),
               Flatten("flat"), Affine("fc", np.ones((3, 8))), LIF("m", threshold=np.array(1.0), decay=np.array(0.5)),
               Output("y")], [("x", "pool"), ("pool", "n"), ("n", "flat"), ("flat", "fc"), ("fc", "m"), ("m", "y")])
    with pytest.raises(GraphError, match="LIF 'n': r = 1 needs its input gain tau/dt in the weights.*'pool'"):
        to_nir(g, lif_r="1")
    written = to_nir(g)
    assert np.all(written.nodes["n"].r == 2.0) and np.all(written.nodes["m"].r == 1.0)
    assert np.all(written.nodes["fc"].weight == 2.0) and np.all(written.nodes["pool"].kernel_size == 2)


# ---------------------------------------------------------------- Rockpool: its dt (1e-3)


ROCKPOOL_DT = 1e-3


@pytest.mark.parametrize("neuron", [
    lambda n: LIFNeuronTorch(n, tau_mem=0.004, threshold=0.5, dt=ROCKPOOL_DT),
    lambda n: LIFTorch(n, tau_mem=0.004, tau_syn=0.002, threshold=0.5, dt=ROCKPOOL_DT),
], ids=["LIFNeuronTorch", "LIFTorch"])
def test_rockpool_files_are_refused_as_no_reading_reproduces_rockpool(neuron: Callable[[int], torch.nn.Module]) -> None:
    """Rockpool steps v = exp(-dt/tau) v + I (a current likewise) and writes r = tau exp(-dt/tau) / dt: forward
    Euler reads a decay of 1 - dt/tau and a gain of exp(-dt/tau), the exact solution a gain of
    (1 - e) tau e / dt. from_nir names the convention and refuses; an explicit integrator reads it by the
    equation, whose spikes are not Rockpool's."""
    net = RockpoolSequential(LinearTorch((6, 8)), neuron(8), LinearTorch((8, 4)), neuron(4))
    rng = np.random.default_rng(40)
    for linear in (net[0], net[2]):  # Rockpool draws its weights from torch's global generator: seeded here
        linear.weight.data = torch.from_numpy(rng.normal(0.3, 0.5, tuple(linear.weight.shape))).float()
    written = rockpool_export(net)
    with pytest.raises(GraphError, match="as Rockpool writes its neurons.*pass integrator='euler'"):
        from_nir(written, ROCKPOOL_DT)
    x = _spikes(6, 41)
    _, _, rec = net(torch.from_numpy(x), record=True)
    names = [f"{k}_{type(net[k]).__name__}" for k in (1, 3)]
    theirs = rec[f"{names[1]}_output"].detach().numpy()
    ours = _ours(from_nir(written, ROCKPOOL_DT, integrator="euler"), x, names)
    assert theirs.sum() > 20 and not np.array_equal(ours[names[1]], theirs[:, : T - 2])


def test_rockpool_reads_no_nir_lif() -> None:
    """Rockpool 3.1's reader asks a nir.LIF for tau_mem (CubaLIF's name) and fails: loudly."""
    graph = _our_net(lambda name: LIF(name, threshold=np.array(0.5), decay=np.array(0.75)))
    with pytest.raises(AttributeError, match="tau_mem"):
        rockpool_import(to_nir(graph, ROCKPOOL_DT))


# ---------------------------------------------------------------- what a file does not say: refused


def test_if_gain_other_than_one_or_one_over_dt_is_refused_until_chosen() -> None:
    """r = 2 at dt = 1e-3: v += 2 I (per tick) or v += 0.002 I (NIR's equation)? The file does not say."""
    g = nir.NIRGraph(nodes={"x": nir.Input(np.array([2])), "fc": nir.Linear(weight=np.ones((1, 2))),
                            "n": nir.IF(r=np.array([2.0]), v_threshold=np.array([3.0]), v_reset=np.array([0.0])),
                            "y": nir.Output(np.array([1]))},
                     edges=[("x", "fc"), ("fc", "n"), ("n", "y")])
    with pytest.raises(GraphError, match="IF 'n': r = \\[2.\\] is neither 1 .* pass if_gain='nir'"):
        from_nir(g, 1e-3)
    assert from_nir(g, 1e-3, if_gain="step").node("n").threshold == np.nextafter(1.5, 2)
    assert from_nir(g, 1e-3, if_gain="nir").node("n").threshold == np.nextafter(3.0 / 2e-3, np.inf)


def _if_node() -> nir.IF:
    return nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2))


def test_branches_of_unequal_depth_are_refused() -> None:
    """x -> n1 -> n2 and a skip x -> n2: NIR adds both in the same step, ours would add the skip a tick early."""
    w = np.ones((2, 2))
    g = nir.NIRGraph(nodes={"x": nir.Input(np.array([2])), "fc1": nir.Linear(weight=w), "n1": _if_node(),
                            "fc2": nir.Linear(weight=w), "skip": nir.Linear(weight=w), "n2": _if_node(),
                            "y": nir.Output(np.array([2]))},
                     edges=[("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("x", "skip"), ("skip", "n2"),
                            ("n2", "y")], type_check=False)
    with pytest.raises(GraphError, match="'n2': its inputs .*'n1': 1.* would arrive ticks apart"):
        from_nir(g, 1e-3)


def test_a_bias_after_a_delay_waits_for_the_layers_only() -> None:
    """x -> Delay (2 ticks) -> Affine (bias 0.25) -> n: n runs one tick behind NIR (the relays' ticks are NIR's
    delay), so its bias is held back one tick (v_init = -0.25), not three."""
    g = from_nir(nir.NIRGraph(nodes={"x": nir.Input(np.array([2])), "d": nir.Delay(delay=np.full(2, 2e-3)),
                                     "fc": nir.Affine(weight=np.ones((2, 2)), bias=np.full(2, 0.25)), "n": _if_node(),
                                     "y": nir.Output(np.array([2]))},
                              edges=[("x", "d"), ("d", "fc"), ("fc", "n"), ("n", "y")], type_check=False), 1e-3)
    assert g.node("n").v_init == -0.25 and ("d", "d.2") in g.edges


def _biased_second_layer(bias: float) -> nir.NIRGraph:
    """x -> Linear -> IF -> Affine (bias) -> LIF (decay 0.5, unit gain, threshold 1): the LIF is two ticks behind NIR."""
    lif = nir.LIF(tau=np.full(2, 2e-3), r=np.full(2, 2.0), v_leak=np.zeros(2), v_threshold=np.ones(2),
                  v_reset=np.zeros(2))
    return nir.NIRGraph(nodes={"x": nir.Input(np.array([2])), "fc1": nir.Linear(weight=np.eye(2)), "n1": _if_node(),
                               "fc2": nir.Affine(weight=np.eye(2), bias=np.full(2, bias)), "n2": lif,
                               "y": nir.Output(np.array([2]))},
                        edges=[("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "y")], type_check=False)


def test_a_held_bias_that_would_fire_before_its_input_is_refused() -> None:
    """n2's bias 0.3 is held back two ticks by v_init = (0 - 0.3 (1 + 0.5)) / 0.25 = -1.8, which the bias alone
    carries to -0.6 and then 0 as the input arrives: exact. A bias of -1 would need v_init = 6, and 0.5 * 6 - 1 = 2
    crosses the threshold before the input: refused, naming the option; bias_timing='early' keeps v_init at 0."""
    assert from_nir(_biased_second_layer(0.3), 1e-3).node("n2").v_init == pytest.approx(-1.8)
    with pytest.raises(GraphError, match="'n2'.* 2 ticks until.* 2 neurons across the threshold.*bias_timing='early'"):
        from_nir(_biased_second_layer(-1.0), 1e-3)
    assert from_nir(_biased_second_layer(-1.0), 1e-3, bias_timing="early").node("n2").v_init == 0


def _nir_run(g: nir.NIRGraph, order: list[str], x: np.ndarray, dt: float) -> Spikes:
    """NIR's meaning of a chain, step by step: instantaneous edges, v from 0, Affine biases with the input, forward
    Euler for a LIF, v += dt r I for an IF, a spike on v > v_threshold and then v = v_reset."""
    spikes, current = {}, x.astype(np.float64)
    for name in order:
        node = g.nodes[name]
        if isinstance(node, nir.Affine):
            current = current @ node.weight.T + node.bias
            continue
        v, out = np.zeros(current.shape[::2]), []
        for t in range(current.shape[1]):
            if isinstance(node, nir.LIF):
                v = v + dt / node.tau * (node.v_leak - v + node.r * current[:, t])
            else:
                v = v + dt * node.r * current[:, t]
            fired = v > node.v_threshold
            v = np.where(fired, node.v_reset, v)
            out.append(fired)
        spikes[name] = current = np.stack(out, axis=1).astype(np.float64)
    return spikes


def test_our_biased_layers_mean_in_the_written_nir_what_they_compute_here() -> None:
    """Our biases act from tick 0, two ticks before n2's input; to_nir writes the start those ticks carry n2 to
    (v_reset = -start, as NIR starts at v = 0), so the file's NIR meaning, simulated by its equations, is our
    network's spikes, one tick per layer later."""
    rng = np.random.default_rng(11)
    g = Graph([Input("x", (6,)), Affine("fc1", rng.normal(0.4, 0.5, (8, 6)), rng.normal(0.0, 0.05, 8)),
               LIF("n1", threshold=np.array(0.9), decay=np.array(0.75), v_init=np.array(0.2)),
               Affine("fc2", rng.normal(0.3, 0.6, (4, 8)), rng.normal(0.0, 0.1, 4)),
               IF("n2", threshold=np.array(1.1), v_init=rng.uniform(-0.3, 0.3, 4)), Output("y")],
              [("x", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "y")])
    written = to_nir(g, 1e-3)
    assert "neurocomp_bias_timing" not in written.metadata and np.any(written.nodes["n2"].v_reset != 0)
    x = _spikes(6, 12)
    _assert_same(_ours(g, x, ["n1", "n2"]), _nir_run(written, ["fc1", "n1", "fc2", "n2"], x, 1e-3))
