"""Copy groups: the emulator runs identical TrueNorth neurons once and gets the same integers."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.backends import emulator
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.target import load_target
from netlib import random_spikes
from test_partition_windows import _conv_net


def _program(params: dict | None = None):
    target = load_target("truenorth")
    program = compile_graph(_conv_net(), target, CompileOptions()).program
    if params:
        n = program.netlist
        program = dataclasses.replace(program, netlist=dataclasses.replace(n, params={**n.params, **params}))
    return program, target


def _equal(a: emulator.RunResult, b: emulator.RunResult) -> None:
    for key in a.spikes:
        np.testing.assert_array_equal(a.spikes[key], b.spikes[key], err_msg=key)
    for key in a.core_counts:
        np.testing.assert_array_equal(a.core_counts[key], b.core_counts[key], err_msg=key)
    assert a.layer_counts == b.layer_counts and a.merges == b.merges


def test_collapsed_copies_give_the_same_spikes_and_counters():
    program, target = _program()
    ready = emulator.prepare(program, target)
    n, reduced = program.netlist, ready.program.netlist
    assert ready.collapsed is not None and reduced.n_neurons < n.n_neurons / 3   # fan-out copies are most neurons
    assert ready.collapsed.size.sum() == n.n_neurons
    np.testing.assert_array_equal(np.diff(reduced.neuron_ptr) > 0, np.diff(n.neuron_ptr) > 0)
    x = {"x": random_spikes((2, 12, 12), 3, 16, 0.3)}
    full = emulator.run(program, target, x, copies=False)
    _equal(full, emulator.run(program, target, x))
    _equal(full, emulator.run(ready, target, x))          # a prepared program runs again and again
    _equal(full, emulator.run(ready, target, x))
    assert sum(int(s.sum()) for s in full.spikes.values()) > 0


def test_stochastic_programs_keep_every_copy():
    n = _program()[0].netlist
    program, target = _program({"tm": np.full(n.n_neurons, 3, dtype=np.int64)})
    assert target.hooks.copy_groups(program.netlist) is None
    assert emulator.prepare(program, target).collapsed is None


def test_loihi_programs_are_not_collapsed():
    target = load_target("loihi")
    program = compile_graph(_conv_net(), target, CompileOptions()).program
    assert emulator.prepare(program, target).collapsed is None


def test_rows_are_compared_entry_by_entry():
    import scipy.sparse as sp

    from neurocomp.backends.emulator.copies import _same_rows

    w = sp.csr_matrix(np.array([[1, 0, 2], [1, 0, 2], [1, 2, 0], [0, 0, 0], [0, 0, 0], [1, 0, 3]]))
    first = np.array([0, 0, 0, 3, 3, 0])   # as if rows 2 and 5 had collided with row 0
    np.testing.assert_array_equal(_same_rows(w, first), [True, True, False, True, True, False])
