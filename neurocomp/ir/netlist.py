"""Hardware-level IR: cores with integer neuron tables, synapse tables and destinations.

Global numbering: core c owns neurons neuron_ptr[c]:neuron_ptr[c+1] and axons
axon_ptr[c]:axon_ptr[c+1]. Synapses are (axon, neuron) pairs plus target-specific
tables (TrueNorth: axon types and per-neuron type weights; Loihi: weights and a
per-core weight exponent). Edges send a neuron's spike to an axon after `delay`
ticks; input edges do the same for external input channels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class LayerMap:
    """Where a Graph layer lives: global neuron id of each of its neurons (graph order)."""

    name: str
    shape: tuple[int, ...]
    neurons: np.ndarray
    kind: str           # "spiking" or "readout"
    scale: float        # float value of one integer unit of membrane potential
    cores: tuple[int, ...]
    binding: str        # the resource that limited this layer's split
    used: float
    allowed: float


@dataclass(frozen=True)
class Netlist:
    target: str
    neuron_ptr: np.ndarray
    axon_ptr: np.ndarray
    core_layer: np.ndarray                 # (C,) index into layers, -1 for helper cores
    params: Mapping[str, np.ndarray]       # per-neuron integer parameters (target's units)
    syn_axon: np.ndarray
    syn_neuron: np.ndarray
    syn_tables: Mapping[str, np.ndarray]   # target-specific synapse data
    edge_src: np.ndarray                   # neuron -> axon edges
    edge_axon: np.ndarray
    edge_delay: np.ndarray
    in_channel: np.ndarray                 # external input channel -> axon edges
    in_axon: np.ndarray
    in_delay: np.ndarray
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    layers: tuple[LayerMap, ...]
    outputs: tuple[str, ...]
    notes: Mapping[str, object] = field(default_factory=dict)

    @property
    def n_cores(self) -> int:
        return len(self.neuron_ptr) - 1

    @property
    def n_neurons(self) -> int:
        return int(self.neuron_ptr[-1])

    @property
    def n_axons(self) -> int:
        return int(self.axon_ptr[-1])

    @property
    def n_inputs(self) -> int:
        return int(sum(np.prod(s) for _, s in self.inputs))

    def neuron_core(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_cores), np.diff(self.neuron_ptr))

    def axon_core(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_cores), np.diff(self.axon_ptr))

    def layer(self, name: str) -> LayerMap:
        for lm in self.layers:
            if lm.name == name:
                return lm
        raise KeyError(name)

    def core_traffic_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(source core, destination core) of every neuron edge."""
        return self.neuron_core()[self.edge_src], self.axon_core()[self.edge_axon]
