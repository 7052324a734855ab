"""Each chip family provides the typed hooks of neurocomp.hooks.TargetHooks; a family that does not is refused by name."""
from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

from neurocomp.errors import TargetError
from neurocomp.hooks import HOOKS, TargetHooks, check_hooks
from neurocomp.target import BUILTIN, load_target

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_family_has_every_hook_with_the_protocols_parameters(name):
    hooks = load_target(name).hooks
    for hook in HOOKS:
        want = getattr(TargetHooks, hook, None)
        if callable(want):
            assert list(inspect.signature(getattr(hooks, hook)).parameters) == list(inspect.signature(want).parameters)[1:]
    assert hooks.WEIGHT_MODES[0] in ("bits", "levels")


def _family(**hooks) -> types.ModuleType:
    module = types.ModuleType("fake")
    for name, value in vars(load_target("loihi").hooks).items():
        setattr(module, name, value)
    for name, value in hooks.items():
        if value is None:
            delattr(module, name)
        else:
            setattr(module, name, value)
    return module


def test_a_missing_hook_is_named():
    with pytest.raises(TargetError, match="targets/fake: hook 'deterministic' is missing"):
        check_hooks(_family(deterministic=None), "fake")


def test_a_hook_with_other_parameters_is_named():
    with pytest.raises(TargetError, match=r"hook weight_max takes \(w, spec\), the protocol \(spec, w\)"):
        check_hooks(_family(weight_max=lambda w, spec: 1.0), "fake")
    with pytest.raises(TargetError, match="WEIGHT_MODES must be a non-empty tuple"):
        check_hooks(_family(WEIGHT_MODES=()), "fake")


def test_the_protocol_lists_every_hook_generic_code_calls():
    """Read from the source: every `hooks.NAME` outside neurocomp/train (whose `hooks` is the family's train
    extension) names a protocol member, so no generic call can meet a family without it."""
    used = {m for path in (ROOT / "neurocomp").rglob("*.py") if "train" not in path.parts
            for m in re.findall(r"(?<!neurocomp\.)\bhooks\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8"))}
    assert {"legalize", "build_netlist", "stepper", "deterministic"} <= used
    assert used - {"__name__"} <= set(HOOKS)


def test_loihi_adapts_reset_by_subtraction_and_the_program_keeps_the_adapted_graph(tmp_path):
    """The chip resets to zero; the stored graph says so, so the reference computes what the emulator does."""
    import numpy as np

    import neurocomp
    from neurocomp.ir.graph import Neuron, Readout
    from netlib import integer_cnn, random_spikes

    graph = integer_cnn(reset="subtract")
    program = neurocomp.compile(graph, "loihi")
    [note] = program.report["adapted"]
    assert "2 layer(s) built for reset by subtraction (n1, n2)" in note and "--reset zero" in note
    loaded = neurocomp.load(program.save(tmp_path / "p"))
    spiking = [n for n in loaded.source_graph().nodes if isinstance(n, Neuron) and not isinstance(n, Readout)]
    assert [n.reset for n in spiking] == ["zero", "zero"]
    x = random_spikes((2, 6, 6), batch=2, ticks=16, rate=0.4)
    chip, ref = loaded.run(x), loaded.run(x, backend="reference")
    for layer, spikes in ref.spikes.items():
        np.testing.assert_array_equal(chip.spikes[layer], spikes, err_msg=layer)
    tn = neurocomp.compile(graph, "truenorth")
    assert tn.report["adapted"] == [] and tn.graph is graph
