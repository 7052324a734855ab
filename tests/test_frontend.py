"""Frontends: the safe `.pt` format and NIR import/export, including the neuron discretisation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from neurocomp.backends import reference
from neurocomp.errors import FormatError, GraphError
from neurocomp.frontend import from_nir, graph_to_dict, load_graph, load_model, load_nir, save_graph, save_nir, to_nir
from neurocomp.ir.graph import IF, LIF, Affine, Conv2d, Flatten, Graph, Input, Neuron, Node, Output, Readout, SumPool2d
from neurocomp.ir.layers import lower
from netlib import shared_nir_dir

NIR_DIR = shared_nir_dir()
DT = 1e-3


def _zoo(reset: str = "zero", if_bias: float = 0.0) -> Graph:
    """Every node type, with float64 values that float32 cannot hold (to catch lossy paths)."""
    rng = np.random.default_rng(0)
    nodes = [
        Input("x", (2, 6, 6), encoding="rate"),
        Conv2d("conv", rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4), stride=(1, 1), padding=(1, 1), groups=2),
        IF("if1", threshold=rng.uniform(0.5, 2, size=(4, 6, 6)), bias=np.array(if_bias)),
        SumPool2d("pool", (2, 2)),
        Flatten("flat"),
        Affine("fc1", rng.normal(size=(5, 36))),
        LIF("lif", threshold=0.7 + rng.uniform(size=5), bias=np.array(0.1), v_init=np.array(0.05),
            decay=rng.uniform(0.2, 0.9, size=5), reset=reset),
        Affine("fc_c", rng.normal(size=(5, 5))),
        LIF("cuba", threshold=rng.uniform(0.5, 2, size=5), bias=np.array(0.2), decay=rng.uniform(0.2, 0.9, size=5),
            decay_u=rng.uniform(0.1, 0.8, size=5)),
        Affine("fc2", rng.normal(size=(3, 5)), rng.normal(size=3)),
        Readout("ro", decay=rng.uniform(0.5, 0.9, size=3), decay_u=np.array(0.3)),
        Output("y"),
        Affine("rec", rng.normal(size=(5, 5))),
    ]
    names = [n.name for n in nodes[:-1]]
    edges = tuple(zip(names, names[1:])) + (("cuba", "rec"), ("rec", "cuba"))  # a recurrent CUBA layer
    return Graph(tuple(nodes), edges, {"author": "test"})


def _fields(node: Node) -> dict:
    return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}


def _assert_bitwise(a: Graph, b: Graph) -> None:
    assert [(type(n), n.name) for n in a.nodes] == [(type(n), n.name) for n in b.nodes]
    assert a.edges == b.edges and dict(a.metadata) == dict(b.metadata)
    for na, nb in zip(a.nodes, b.nodes):
        assert a.shape(na.name) == b.shape(nb.name)
        for key, va in _fields(na).items():
            vb = getattr(nb, key)
            if isinstance(va, np.ndarray):
                assert va.shape == vb.shape and va.dtype == vb.dtype and va.tobytes() == vb.tobytes(), (na.name, key)
            else:
                assert va == vb, (na.name, key)


# ---------------------------------------------------------------- .pt format


def test_pt_round_trip_is_bitwise_for_every_node_type(tmp_path: Path) -> None:
    g = _zoo(reset="subtract", if_bias=0.25)
    path = tmp_path / "net.pt"
    save_graph(g, path)
    save_graph(g, path)  # overwriting goes through the same atomic rename
    assert [p.name for p in tmp_path.iterdir()] == ["net.pt"]
    assert {type(n) for n in g.nodes} == {Input, Conv2d, IF, SumPool2d, Flatten, Affine, LIF, Readout, Output}
    _assert_bitwise(g, load_graph(path))


def _write(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    return path


class Payload:
    """A custom class: pickling it into a .pt file must not let it load."""


def _tweak(**changes: object) -> dict:
    """The zoo's dict with the first Conv2d node changed (None value removes a key)."""
    d = graph_to_dict(_zoo())
    conv = d["nodes"][1]
    for key, value in changes.items():
        if value is None:
            del conv[key]
        else:
            conv[key] = value
    return d


BAD_PT = {
    "random bytes": (_garbage, FormatError, "not a readable torch file"),
    "pickled class": (lambda p: _write(p, Payload()), FormatError, "refused for safety: contains Python objects (test_frontend.Payload)"),
    "state_dict": (lambda p: _write(p, {"w": torch.ones(2)}), FormatError, "no 'format' key"),
    "wrong format": (lambda p: _write(p, {**graph_to_dict(_zoo()), "format": "other"}), FormatError,
                     "format is 'other'"),
    "wrong version": (lambda p: _write(p, {**graph_to_dict(_zoo()), "version": 2}), FormatError,
                      "unsupported neurocomp.snn version 2"),
    "unknown node type": (lambda p: _write(p, _tweak(type="Conv3d")), FormatError,
                          "'conv': unknown node type 'Conv3d'"),
    "missing field": (lambda p: _write(p, _tweak(weight=None)), FormatError, "missing field(s) ['weight']"),
    "extra field": (lambda p: _write(p, _tweak(dilation=[2, 2])), FormatError, "unknown field(s) ['dilation']"),
    "int weights": (lambda p: _write(p, _tweak(weight=torch.ones(4, 1, 3, 3, dtype=torch.int64))), FormatError,
                    "expected a dense float tensor, got a torch.int64 tensor"),
    "zero stride": (lambda p: _write(p, _tweak(stride=[0, 1])), FormatError, "'stride': expected a list of ints >= 1"),
    "wrong shape": (lambda p: _write(p, _tweak(weight=torch.ones(4, 3, 3, 3, dtype=torch.float64))), GraphError,
                    "conv: Conv2d expects 6 input channels, got 2"),
    "NaN weight": (lambda p: _write(p, _tweak(weight=torch.full((4, 1, 3, 3), float("nan"), dtype=torch.float64))),
                   GraphError, "conv: weight contains NaN or Inf"),
}


@pytest.mark.parametrize("case", BAD_PT)
def test_pt_bad_files_raise_one_clear_error(tmp_path: Path, case: str) -> None:
    make, error, message = BAD_PT[case]
    path = make(tmp_path / "bad.pt")
    with pytest.raises(error) as info:
        load_graph(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


class Exploit:
    """Unpickling this would create a file; a safe load must refuse before running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_pt_load_never_runs_pickled_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "evil.pt", {"format": "neurocomp.snn", "payload": Exploit(marker)})
    with pytest.raises(FormatError, match="refused for safety: contains Python objects"):
        load_graph(path)
    assert not marker.exists()


def test_pt_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        load_graph(tmp_path / "absent.pt")


def test_load_model_dispatches_by_suffix(tmp_path: Path) -> None:
    save_graph(_zoo(), tmp_path / "a.pt")
    assert len(load_model(tmp_path / "a.pt").nodes) == 13
    assert load_model(NIR_DIR / "lif_norse.nir").shape("1") == (1,)
    with pytest.raises(FormatError, match=r"unsupported model file .*; expected \.pt or \.nir"):
        load_model(tmp_path / "model.onnx")


# ---------------------------------------------------------------- NIR fixtures


def test_nir_cnn_sinabs_loads_with_shapes_and_exact_weights() -> None:
    g = load_nir(NIR_DIR / "cnn_sinabs.nir")
    assert g.inputs[0].shape == (2, 34, 34)
    assert g.shape("12") == (10,) and g.shape("output") == (10,) and g.topological()[-1] == "output"
    src = nir.read(NIR_DIR / "cnn_sinabs.nir")
    assert np.array_equal(g.node("0").weight, src.nodes["0"].weight)
    assert g.node("0").stride == (2, 2) and g.node("0").padding == (1, 1)
    assert isinstance(g.node("4"), SumPool2d) and isinstance(g.node("8"), Flatten)
    assert g.node("12").threshold == np.nextafter(1.0, 2.0)  # NIR's strict v > 1 as u >= 1+ulp


def test_nir_lif_norse_discretised_at_dt() -> None:
    g = load_nir(NIR_DIR / "lif_norse.nir", dt=DT)
    lif, tau = g.node("1"), np.float64(np.float32(0.0025))
    assert isinstance(lif, LIF)
    assert lif.decay == 1 - DT / tau
    assert lif.threshold == pytest.approx(0.1 / (DT / tau))


def test_nir_lif_rockpool_loads_without_type_checks() -> None:
    g = load_nir(NIR_DIR / "lif_rockpool.nir")
    assert "type mismatch" in g.metadata["nir_type_check"]
    assert isinstance(g.node("1_LIFNeuronTorch"), LIF) and g.node("0_LinearTorch").bias is None


@pytest.mark.parametrize("name, beta, alpha", [("braille_noDelay_bias_zero.nir", 0.9, 0.55),
                                               ("braille_noDelay_noBias_subtract.nir", 0.85, 0.75)])
def test_nir_braille_recurrent_cubalif_at_its_snntorch_dt(name: str, beta: float, alpha: float) -> None:
    with pytest.raises(GraphError, match="CubaLIF 'lif1.lif': dt=0.001 s exceeds tau_syn"):
        load_nir(NIR_DIR / name)
    if "_bias_" in name:   # its Affine biases flow into lif1's decaying current, one tick before its input
        with pytest.raises(GraphError, match="'lif1.lif'.*1 tick until.*synaptic current.*bias_timing='early'"):
            load_nir(NIR_DIR / name, dt=1e-4)
    g = load_nir(NIR_DIR / name, dt=1e-4, bias_timing="early")  # snnTorch's step: unit gains, its alpha and beta
    lif = g.node("lif1.lif")
    assert isinstance(lif, LIF) and ("lif1.lif", "lif1.w_rec") in g.edges and ("lif1.w_rec", "lif1.lif") in g.edges
    assert g.topological() == ["input", "fc1", "lif1.lif", "lif1.w_rec", "fc2", "lif2", "output"]
    assert lif.decay == pytest.approx(beta, abs=1e-7) and lif.decay_u == pytest.approx(alpha, abs=1e-7)
    assert lif.threshold == pytest.approx(1.0, abs=1e-6) and lif.bias == 0 and lif.v_init == 0


def test_nir_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        load_nir(tmp_path / "absent.nir")
    (tmp_path / "x.nir").write_text("hello")
    with pytest.raises(FormatError, match="not a NIR"):
        load_nir(tmp_path / "x.nir")


# ---------------------------------------------------------------- NIR mapping rules


def _if_params(n: int, v_threshold: float = 1.0) -> dict:
    return {"r": np.ones(n), "v_threshold": np.full(n, v_threshold), "v_reset": np.zeros(n)}


def _chain(*nodes: nir.NIRNode, in_shape: tuple[int, ...]) -> nir.NIRGraph:
    named = {"in": nir.Input(np.array(in_shape)), **{f"n{i}": n for i, n in enumerate(nodes)}}
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names, names[1:])), type_check=False)


def test_nir_cycles_need_a_neuron() -> None:
    lif = {"tau": np.full(2, 0.01), "r": np.ones(2), "v_leak": np.zeros(2), "v_threshold": np.ones(2)}
    nodes = {"in": nir.Input(np.array([2])), "fc": nir.Linear(weight=np.eye(2)), "lif": nir.LIF(**lif),
             "rec": nir.Linear(weight=np.eye(2)), "out": nir.Output(np.array([2]))}
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out")]
    g = from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    assert g.topological() == ["in", "fc", "lif", "rec", "out"] and ("rec", "lif") in g.edges
    linear = [("in", "lif"), ("fc", "rec"), ("rec", "fc"), ("rec", "lif"), ("lif", "out")]
    with pytest.raises(GraphError, match=r"cycle through \['fc', 'rec'\] with no neuron node"):
        from_nir(nir.NIRGraph(nodes=nodes, edges=linear, type_check=False))


def test_nir_avgpool_scale_folds_into_next_weights() -> None:
    w = np.arange(8.0).reshape(2, 4)
    g = from_nir(_chain(nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
                        nir.Flatten(input_type=None, start_dim=0), nir.Scale(scale=np.array([1.0, 2.0, 3.0, 4.0])),
                        nir.Linear(weight=w), nir.IF(**_if_params(2)), in_shape=(1, 4, 4)))
    assert isinstance(g.node("n0"), SumPool2d) and g.shape("n0") == (1, 2, 2)
    assert "n2" not in g.node_map  # Scale folded away
    assert np.array_equal(g.node("n3").weight, w / 4 * np.array([1.0, 2.0, 3.0, 4.0]))


def test_nir_avgpool_with_two_consumers_is_refused() -> None:
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([1, 4, 4])), "pool": pool, "a": nir.Flatten(input_type=None),
                            "b": nir.Flatten(input_type=None)},
                     edges=[("in", "pool"), ("pool", "a"), ("pool", "b")], type_check=False)
    with pytest.raises(GraphError, match="AvgPool2d 'pool': our IR has no scaling op"):
        from_nir(g)


def _conv(padding, dilation=1, kernel: int = 3) -> nir.Conv2d:
    return nir.Conv2d(input_shape=None, weight=np.ones((1, 1, kernel, kernel)), stride=1, padding=padding,
                      dilation=dilation, groups=1, bias=np.zeros(1))


@pytest.mark.parametrize("node, match", [
    (_conv(1, dilation=2), "Conv2d 'n0': dilation \\(2, 2\\) is not supported"),
    (_conv("same", kernel=2), "Conv2d 'n0': padding 'same' .* needs asymmetric padding"),
    (nir.Flatten(input_type=np.array([1, 5, 5]), start_dim=1), "Flatten 'n0': start_dim=1, end_dim=-1"),
    (nir.LI(tau=np.ones(1), r=np.ones(1), v_leak=np.zeros(1)), "read-out 'n0': its input gain 0.001..0.001 must fold"),
    (nir.Delay(delay=np.ones(1)), "Delay 'n0': delays \\[1000.\\] ticks at dt=0.001 s; only one uniform whole number"),
    (nir.IF(r=-np.ones(1), v_threshold=np.ones(1)), "IF 'n0': r must be > 0"),
    (nir.LIF(tau=np.full(1, 1e-4), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1)),
     "LIF 'n0': dt=0.001 s exceeds tau"),
])
def test_nir_unmappable_nodes_are_named(node: nir.NIRNode, match: str) -> None:
    with pytest.raises(GraphError, match=match):
        from_nir(_chain(node, in_shape=(1, 5, 5)))


def test_nir_same_padding_and_nested_graphs() -> None:
    inner = nir.NIRGraph(nodes={"in": nir.Input(np.array([1, 5, 5])), "conv": _conv("same"),
                                "out": nir.Output(np.array([1, 5, 5]))},
                         edges=[("in", "conv"), ("conv", "out")], type_check=False)
    outer = nir.NIRGraph(nodes={"x": nir.Input(np.array([1, 5, 5])), "block": inner,
                                "y": nir.Output(np.array([1, 5, 5]))},
                         edges=[("x", "block"), ("block", "y")], type_check=False)
    g = from_nir(outer)
    assert [n.name for n in g.nodes] == ["x", "block.conv", "y"]
    assert g.node("block.conv").padding == (1, 1) and g.shape("block.conv") == (1, 5, 5)


# ---------------------------------------------------------------- NIR export and round trip


def _broadcast(graph: Graph, node: Node, key: str) -> object:
    """Neuron parameters compared at population shape (import stores uniform ones as scalars)."""
    value = getattr(node, key)
    if isinstance(node, Neuron) and isinstance(value, np.ndarray):
        return np.broadcast_to(value, graph.shape(node.name))
    return value


@pytest.mark.parametrize("via_file", [False, True])
def test_nir_round_trip_preserves_every_parameter(tmp_path: Path, via_file: bool) -> None:
    """Biases written as ours act (from tick 0, marked): the zoo's biases would fire its neurons before their input
    (held: tests/test_nir_interop.py); LIF gains as r = tau/dt, which keeps the weights (r = 1 folds them)."""
    g = _zoo()
    if via_file:
        save_nir(g, tmp_path / "zoo.nir", dt=DT, lif_r="tau/dt", bias_timing="early")
        back = load_nir(tmp_path / "zoo.nir", dt=DT)
    else:
        back = from_nir(to_nir(g, dt=DT, lif_r="tau/dt", bias_timing="early"), dt=DT)
    assert set(back.edges) == set(g.edges)
    for node in g.nodes:
        other = back.node(node.name)
        assert type(other) is type(node) and back.shape(node.name) == g.shape(node.name)
        for key, value in _fields(node).items():
            mine, theirs = _broadcast(g, node, key), _broadcast(back, other, key)
            if not isinstance(value, np.ndarray):
                assert mine == theirs, (node.name, key)
            elif isinstance(node, (LIF, Readout)):  # tau = dt / (1 - decay) is not bitwise invertible
                np.testing.assert_allclose(theirs, mine, rtol=1e-13, atol=1e-15, err_msg=f"{node.name}.{key}")
            else:
                assert np.array_equal(theirs, mine), (node.name, key)


@pytest.mark.parametrize("kwargs, match", [
    ({"reset": "subtract"}, "LIF 'lif': reset 'subtract' has no NIR equivalent"),
    ({"if_bias": 0.5}, "IF 'if1': NIR IF has no bias"),
])
def test_nir_export_refuses_what_nir_cannot_say(kwargs: dict, match: str) -> None:
    with pytest.raises(GraphError, match=match):
        to_nir(_zoo(**kwargs), bias_timing="early")


# ---------------------------------------------------------------- numerics of the neuron mapping

T = 40
SPIKES = (np.random.default_rng(7).uniform(size=(T, 3)) < 0.4).astype(np.float64)
W = np.array([[0.5, 0.25, -0.25], [0.3, 0.7, 0.1]])  # row 0 is dyadic: v hits the threshold exactly
B = np.array([0.0, 0.05])


def _simulate_ours(graph: Graph) -> np.ndarray:
    """Our Graph semantics by hand: the neuron sees the Affine output of the previous tick."""
    fc, neuron = graph.node("fc"), graph.node("neuron")
    decay, decay_u = (neuron.decay, neuron.decay_u) if isinstance(neuron, LIF) else (1.0, 0.0)
    u, i, prev, out = np.broadcast_to(neuron.v_init, (2,)).copy(), np.zeros(2), np.zeros(3), []
    for x in SPIKES:
        i = decay_u * i + (fc.weight @ prev + fc.bias)
        u = decay * u + i + neuron.bias
        spikes = u >= neuron.threshold
        u[spikes] = 0.0 if neuron.reset == "zero" else u[spikes] - neuron.threshold
        out.append(spikes)
        prev = x
    return np.array(out)


def _simulate_nir(node: nir.IF | nir.LIF, bias: np.ndarray) -> np.ndarray:
    """The NIR equations, per tick (IF) or forward Euler at DT (LIF, CubaLIF), same one-tick input latency; the
    bias starts with the input (NIR edges are instantaneous; from_nir holds ours back to match)."""
    v, syn, prev, out = np.zeros(2), np.zeros(2), np.zeros(3), []
    for t, x in enumerate(SPIKES):
        current = W @ prev + (bias if t else 0)
        if isinstance(node, nir.CubaLIF):
            syn = syn + DT / node.tau_syn * (node.w_in * current - syn)
            v = v + DT / node.tau_mem * (node.v_leak - v + node.r * syn)
        elif isinstance(node, nir.LIF):
            v = v + DT / node.tau * (node.v_leak - v + node.r * current)
        else:
            v = v + node.r * current
        spikes = v > node.v_threshold
        v[spikes] = node.v_reset[spikes]
        out.append(spikes)
        prev = x
    return np.array(out)


@pytest.mark.parametrize("neuron", [
    nir.IF(r=np.array([1.0, 0.8]), v_threshold=np.array([1.0, 0.9]), v_reset=np.array([0.0, -0.2])),
    nir.LIF(tau=np.array([0.004, 0.01]), r=np.array([2.0, 0.5]), v_leak=np.array([0.1, -0.05]),
            v_threshold=np.array([0.5, 0.1]), v_reset=np.array([0.0, 0.02])),
    nir.CubaLIF(tau_syn=np.array([0.002, 0.005]), tau_mem=np.array([0.004, 0.01]), r=np.array([2.0, 0.5]),
                v_leak=np.array([0.1, -0.05]), v_threshold=np.array([0.5, 0.1]), v_reset=np.array([0.0, 0.02]),
                w_in=np.array([1.5, 0.8])),
])
def test_nir_neuron_mapping_keeps_every_spike(neuron: nir.NIRNode) -> None:
    """A bias into a CubaLIF's decaying current cannot be held back until the input arrives: refused, and the
    CubaLIF's spikes are compared without it."""
    def graph(bias: np.ndarray) -> nir.NIRGraph:  # noqa: E306
        return nir.NIRGraph(nodes={"in": nir.Input(np.array([3])), "fc": nir.Affine(weight=W, bias=bias),
                                   "neuron": neuron, "out": nir.Output(np.array([2]))},
                            edges=[("in", "fc"), ("fc", "neuron"), ("neuron", "out")])
    bias = B
    if isinstance(neuron, nir.CubaLIF):
        with pytest.raises(GraphError, match="'neuron'.*decaying synaptic current"):
            from_nir(graph(B), dt=DT)
        bias = np.zeros(2)
    g = graph(bias)
    expected = _simulate_nir(neuron, bias)
    assert 0 < expected.sum(axis=0).min() and expected.sum(axis=0).max() < T  # both neurons do something
    np.testing.assert_array_equal(_simulate_ours(from_nir(g, dt=DT, if_gain="step")), expected)  # IF r: per tick


def test_nir_threshold_and_leaky_readouts_map_with_their_gains() -> None:
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    def net(ro: nir.NIRNode) -> Graph:  # noqa: E306
        return from_nir(_chain(nir.Linear(weight=w), nir.Threshold(threshold=np.array([0.5, 1.0])),
                               nir.Linear(weight=w), ro, in_shape=(2,)), dt=DT)
    g = net(nir.LI(tau=np.full(2, 0.004), r=np.full(2, 2.0), v_leak=np.array([0.0, 1.0])))
    th, ro = g.node("n1"), g.node("n3")
    assert isinstance(th, LIF) and th.decay == 0 and np.array_equal(th.threshold, np.nextafter([0.5, 1.0], 2))
    assert isinstance(ro, Readout) and ro.decay == 0.75 and np.array_equal(ro.bias, [0.0, 0.25])
    np.testing.assert_allclose(g.node("n2").weight, w * 0.5)  # dt r / tau folded into the rows
    g = net(nir.I(r=np.array([2.0, 3.0])))
    assert np.array_equal(g.node("n2").weight, w * np.array([[2.0], [3.0]])) and g.node("n3").decay == 1
    cuba = net(nir.CubaLI(tau_syn=np.full(2, 0.002), tau_mem=np.full(2, 0.004), r=np.full(2, 2.0), v_leak=np.zeros(2)))
    assert cuba.node("n3").decay_u == 0.5 and np.allclose(cuba.node("n2").weight, w * 0.25)


def test_nir_delay_becomes_relays_on_a_spike_path() -> None:
    nodes = {"in": nir.Input(np.array([2])), "d": nir.Delay(delay=np.full(2, 3 * DT)), "fc": nir.Linear(weight=np.eye(2)),
             "n": nir.IF(**_if_params(2, 0.5)), "out": nir.Output(np.array([2]))}
    g = from_nir(nir.NIRGraph(nodes=nodes, edges=[("in", "d"), ("d", "fc"), ("fc", "n"), ("n", "out")], type_check=False), DT)
    assert g.topological() == ["in", "d", "d.2", "d.3", "fc", "n", "out"] and isinstance(g.node("d.3"), IF)
    x = np.zeros((1, 8, 2), np.uint8)
    x[0, 0, 0] = x[0, 1, 1] = 1
    fired = reference.run(lower(g), {"in": x}).spikes["n"][0]
    assert np.argwhere(fired).tolist() == [[4, 0], [5, 1]]  # 1 tick (edge) + 3 (relays) after the input spike
    bad = {**nodes, "d": nir.Delay(delay=np.array([DT, 2 * DT]))}
    with pytest.raises(GraphError, match="Delay 'd': delays \\[1. 2.\\] ticks"):
        from_nir(nir.NIRGraph(nodes=bad, edges=[("in", "d"), ("d", "fc"), ("fc", "n"), ("n", "out")], type_check=False), DT)
