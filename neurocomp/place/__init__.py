"""Place: assign every core of the network to a slot of the chip mesh, minimising spike-hops (placer.py).

placement.py holds the result and its cost, mesh.py the chip geometry, assign.py, anneal.py and congestion.py
the local searches, baselines.py and bound.py the comparisons a report states.
"""
from neurocomp.place.mesh import Mesh
from neurocomp.place.placement import Placement, canonical_traffic, cost, verify_placement
from neurocomp.place.placer import METHODS, place, sequential

__all__ = ["METHODS", "Mesh", "Placement", "canonical_traffic", "cost", "place", "sequential", "verify_placement"]
