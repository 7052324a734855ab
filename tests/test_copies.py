"""Copies: TrueNorth's fan-out copies are counts in the netlist, run once, and equal the expanded chip."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.backends import emulator
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.netlist import LayerMap, Netlist
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


def test_copies_run_once_and_equal_the_expanded_chip():
    program, target = _program()
    n = program.netlist
    assert n.hw_neurons > 3 * n.n_neurons           # fan-out copies are most of the chip's neurons
    ready = emulator.prepare(program, target)
    assert ready.members is not None and ready.program.netlist.n_neurons == n.n_neurons
    np.testing.assert_array_equal(ready.core_neurons, np.diff(n.expanded().neuron_ptr))
    x = {"x": random_spikes((2, 12, 12), 3, 16, 0.3)}
    full = emulator.run(program, target, x, copies=False)
    _equal(full, emulator.run(program, target, x))
    _equal(full, emulator.run(ready, target, x))          # a prepared program runs again and again
    _equal(full, emulator.run(ready, target, x))
    assert sum(int(s.sum()) for s in full.spikes.values()) > 0


def test_stochastic_programs_run_every_copy():
    n = _program()[0].netlist
    program, target = _program({"tm": np.full(n.n_neurons, 3, dtype=np.int64)})
    assert not target.hooks.deterministic(program.netlist)
    ready = emulator.prepare(program, target)
    assert ready.members is None and ready.program.netlist.n_neurons == n.hw_neurons


def test_loihi_programs_have_no_copies():
    target = load_target("loihi")
    program = compile_graph(_conv_net(), target, CompileOptions()).program
    assert program.netlist.copies is None and emulator.prepare(program, target).members is None


def test_expanded_gives_each_copy_one_edge_in_order():
    """Core 0: neuron 0 (2 copies, synapses from axons 0 and 1), neuron 1 (1 copy, axon 1); core 1: neuron 2
    (3 copies, axon 2). Neuron 0's edges go to axons 2 then 3... by hand."""
    n = Netlist.flat(target="truenorth", neuron_ptr=np.array([0, 2, 3]), axon_ptr=np.array([0, 2, 4]),
                core_layer=np.array([0, 0]), params={"vth": np.array([5, 6, 7]), "w": np.array([[1, 2], [3, 4], [5, 6]])},
                syn_axon=np.array([0, 1, 1, 2]), syn_neuron=np.array([0, 0, 1, 2]), syn_tables={"axon_type": np.array([0, 1, 0, 1])},
                edge_src=np.array([2, 0, 2, 0]), edge_axon=np.array([0, 2, 1, 3]), edge_delay=np.array([1, 2, 3, 4]),
                in_channel=np.array([0]), in_axon=np.array([0]), in_delay=np.array([1]), inputs=(("x", (1,)),),
                layers=(LayerMap("a", (3,), np.array([0, 1, 2]), "spiking", 1.0, (0, 1), "neurons", 1, 1),),
                outputs=("a",), copies=np.array([2, 1, 3]))
    assert n.hw_neurons == 6 and n.hw_synapses == 2 + 2 + 1 + 3
    np.testing.assert_array_equal(n.core_neurons(), [3, 3])
    e = n.expanded()
    assert e.copies is None
    np.testing.assert_array_equal(e.neuron_ptr, [0, 3, 6])
    np.testing.assert_array_equal(e.params["vth"], [5, 5, 6, 7, 7, 7])
    np.testing.assert_array_equal(e.params["w"], [[1, 2], [1, 2], [3, 4], [5, 6], [5, 6], [5, 6]])
    np.testing.assert_array_equal(e.syn_axon, [0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(e.syn_neuron, [0, 1, 0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(e.edge_src, [3, 0, 4, 1])    # neuron 2's edges leave copies 0, 1; neuron 0's too
    np.testing.assert_array_equal(e.layers[0].neurons, [0, 2, 3])
    np.testing.assert_array_equal(e.syn_tables["axon_type"], n.syn_tables["axon_type"])
