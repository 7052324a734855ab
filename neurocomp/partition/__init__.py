"""Partition: quantised network + target -> Netlist (cores, tables, destinations).

The generic part splits each layer into core-sized chunks with a target-supplied
predicate and checks the result; the target hook builds its own core tables
(TrueNorth crossbars with axon types and in-core replication, Loihi sparse tables).
"""
from neurocomp.partition.build import LayerCount, cores_hint, count_cores, outgrown, partition, verify_netlist
from neurocomp.partition.split import cat, compact, neuron_order, split

__all__ = ["LayerCount", "cat", "compact", "cores_hint", "count_cores", "outgrown", "neuron_order", "partition", "split", "verify_netlist"]
