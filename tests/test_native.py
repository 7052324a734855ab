"""Native shapes: structural fan-in, the targets' verdicts, the core-native SiamFC builder, `neurocomp check`."""
import json
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, SumPool2d
from neurocomp.ir.layers import lower
from neurocomp.ir.reach import reach
from neurocomp.models.native import native_config, native_conv
from neurocomp.models.siamfc import CONFIGS, POOL, SiamConfig
from neurocomp.native import check_graph
from neurocomp.report.tables import native_row
from neurocomp.target import load_target

TN, LOIHI = load_target("truenorth"), load_target("loihi")


def _conv_graph(cin: int, cout: int, k: int, groups: int = 1, hw: int = 8, sign: float = 0.0) -> Graph:
    """Input -> Conv2d -> IF; `sign` 0: random signs, +1: all weights positive."""
    w = np.random.default_rng(0).standard_normal((cout, cin // groups, k, k))
    w = np.abs(w) * sign if sign else w
    return Graph((Input("x", (cin, hw, hw)), Conv2d("c", w, groups=groups), IF("n"), Output("o")),
                 (("x", "c"), ("c", "n"), ("n", "o")))


def backbone(cfg: SiamConfig, size: int, seed: int = 0) -> Graph:
    """The SiamFC backbone as the compiler sees it after conversion with pools as their own layers
    (random weights): conv -> IF, 3x3/2 pool -> IF after conv1 and conv2, conv5 read out."""
    rng = np.random.default_rng(seed)
    nodes, edges, prev, cin = [Input("x", (3, size, size))], [], "x", 3
    for i, (cout, k, s, g) in enumerate(zip(cfg.channels, cfg.kernels, cfg.conv_strides, cfg.groups), 1):
        w = rng.standard_normal((cout, cin // g, k, k)) / np.sqrt(k * k * cin / g)
        chain = [Conv2d(f"conv{i}", w, stride=s, groups=g)] + ([IF(f"if{i}")] if i < 5 else [Output("out")])
        if cfg.pools and i < 3:
            chain += [SumPool2d(f"pool{i}", POOL, 2), IF(f"pool{i}.if")]
        for node in chain:
            nodes.append(node)
            edges.append((prev, node.name))
            prev = node.name
        cin = cout
    return Graph(tuple(nodes), tuple(edges))


def _failing(graph: Graph, target) -> dict[str, int]:
    return {v.layer: v.usage[0].used for v in check_graph(graph, target) if not v.native}


# -- verdicts, computed by hand --------------------------------------------------------------------------------

def test_truenorth_3x3_over_16_channels_needs_paired_axons():
    v = check_graph(_conv_graph(16, 16, 3), TN)[0]
    assert (v.fan_in, v.usage[0].used, v.usage[0].allowed, v.native) == (144, 288, 256, False)
    assert v.why == "axons 288 > 256" and v.suggestion == "groups=2; or weight mode whole (as it is, fewer neurons per core)"
    grouped = check_graph(_conv_graph(16, 16, 3, groups=2), TN)[0]
    assert (grouped.fan_in, grouped.usage[0].used, grouped.native, grouped.suggestion) == (72, 144, True, "")
    positive = check_graph(_conv_graph(16, 16, 3, sign=1.0), TN)[0]   # one sign: one axon per input
    assert (positive.usage[0].used, positive.native) == (144, True)


def test_truenorth_neurons_per_input_set_and_hopeless_kernel():
    wide = check_graph(_conv_graph(8, 384, 3), TN)[0]       # 72 inputs x 2 fit; 384 neurons share them
    assert wide.why == "neurons per input set 384 > 256" and wide.suggestion == "groups=2"
    v = check_graph(_conv_graph(3, 8, 17, hw=20), TN)[0]   # 289 taps x 2 > 256 even for one channel
    assert not v.native and v.impossible.startswith("one input channel needs 289 inputs x 2 axons = 578 axons")


def test_loihi_synapse_memory_for_the_fan_in():
    v = check_graph(_conv_graph(16, 16, 3), LOIHI)[0]     # 16 neurons per axon: one 64-bit word chunk of 8-bit weights
    assert v.native and [u.used for u in v.usage] == [144, 16, 144 * 192]
    wide = check_graph(_conv_graph(256, 384, 3), LOIHI)[0]   # 384 synapses per axon: 6 chunks of 576 bits
    assert not wide.native and wide.why == f"synapse memory bits {2304 * 3456} > {1 << 20}"
    assert wide.suggestion == "groups=4"   # 576 inputs x (576 + 320) bits = 516,096


def test_structural_fan_in_equals_the_materialised_matrix():
    rng = np.random.default_rng(1)
    pool = SumPool2d("p", 2, 2)
    conv = Conv2d("c", rng.standard_normal((6, 2, 3, 3)), stride=(2, 1), padding=(1, 0), groups=2)
    fc = Affine("fc", rng.standard_normal((5, 6 * 3 * 4)) * (rng.random((5, 72)) < 0.3))
    g = Graph((Input("x", (4, 12, 12)), pool, conv, Flatten("f"), fc, IF("n"), Output("o")),
              (("x", "p"), ("p", "c"), ("c", "f"), ("f", "fc"), ("fc", "n"), ("n", "o")))
    g2 = Graph((Input("x", (4, 12, 12)), pool, conv, IF("n"), Output("o")), (("x", "p"), ("p", "c"), ("c", "n"), ("n", "o")))
    for graph in (g, g2):
        proj = lower(graph).layers[0].projections[0]
        m = proj.matrix(np.arange(proj.n_out))
        m.data[:] = 1
        widest = int(np.diff(m.indptr).max())
        assert reach(proj).fan_in == widest
    assert reach(lower(g2).layers[0].projections[0]).fan_in == 2 * 6 * 6   # 2 channels x a 3x3 window of 2x2 pools


# -- the builder ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,target,groups,failing", [
    ("micro", TN, (1, 2, 2, 2, 2), {"if3": 288}),
    ("full", TN, (3, 32, 32, 32, 32), {"if1": 726, "if2": 2400, "if3": 4608, "if4": 3456, "conv5.readout": 3456}),
    ("micro", LOIHI, (1, 2, 1, 2, 2), {}),
    ("full", LOIHI, (1, 4, 4, 4, 4), {"if2": 1200, "if3": 2304, "if4": 1728, "conv5.readout": 1728}),
])
def test_native_config_passes_the_check(name, target, groups, failing):
    cfg = CONFIGS[name]
    native = native_config(cfg, target)
    assert native.groups == groups and native.channels == cfg.channels
    assert _failing(backbone(cfg, cfg.exemplar_size), target) == failing
    assert _failing(backbone(native, native.exemplar_size), target) == {}


def test_channels_round_up_only_when_no_divisor_fits():
    assert native_conv(16, 16, 3, 1, TN) == (2, 16)
    assert native_conv(17, 16, 3, 1, TN) == (17, 17)   # 17 is prime: one channel per group, 16 -> 17 outputs


def test_native_micro_compiles_for_truenorth_without_partial_sums():
    """The original micro's conv3 is split into spiking partial sums; the native one compiles with none."""
    opts = CompileOptions(timesteps=8, place_effort=1, place_anneal=0, congestion=0.0)
    cfg = CONFIGS["micro"]
    for config, parts in ((cfg, ["if3"]), (native_config(cfg, TN), [])):
        report = compile_graph(backbone(config, 41), TN, opts).report
        assert sorted({r["name"].split(".part")[0] for r in report["layers"] if ".part" in r["name"]}) == parts
        assert report["native"]["native_layers"] == 5 - len(parts)
        assert native_row(report["native"]) == ("5 of 5 layers map natively" if not parts else
                                                "4 of 5 layers map natively; not: if3 (axons 288 > 256)")


# -- the command ----------------------------------------------------------------------------------------------

@pytest.fixture()
def micro_pt(tmp_path: Path) -> Path:
    path = tmp_path / "micro.pt"
    save_graph(backbone(CONFIGS["micro"], 41), path)
    return path


def test_check_table_and_json(micro_pt, capsys):
    assert main(["check", str(micro_pt), "--target", "truenorth"]) == 0
    out = capsys.readouterr().out
    assert "if3" in out and "groups=2" in out and out.strip().endswith("4 of 5 layers map natively")
    assert main(["check", str(micro_pt), "--target", "truenorth", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == "4 of 5 layers map natively" and data["target"] == "truenorth"
    row = next(r for r in data["layers"] if r["layer"] == "if3")
    assert (row["fan_in"], row["axons"], row["allowed"], row["native"]) == (144, 288, 256, False)
    assert row["suggestion"].startswith("groups=2; or weight mode whole")
    assert main(["check", str(micro_pt), "--target", "loihi", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["native_layers"] == 5


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_check_bad_input_is_one_line_exit_2(micro_pt, tmp_path, capsys):
    assert main(["check", str(micro_pt), "--target", "spinnaker"]) == 2
    assert "unknown target 'spinnaker'" in _err_line(capsys)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    assert main(["check", str(text), "--target", "truenorth"]) == 2
    assert "unsupported model file" in _err_line(capsys)
    wide = tmp_path / "wide.pt"
    save_graph(_conv_graph(3, 8, 17, hw=20), wide)
    assert main(["check", str(wide), "--target", "truenorth"]) == 2
    err = _err_line(capsys)
    assert "layer n: one input channel needs 289 inputs x 2 axons = 578 axons" in err and "smaller kernel" in err
