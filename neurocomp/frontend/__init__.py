"""Model file frontends: the safe neurocomp `.pt` format and NIR (`.nir`)."""
from neurocomp.frontend.load import load_model
from neurocomp.frontend.nirgraph import from_nir, load_nir, save_nir, to_nir
from neurocomp.frontend.ptfile import graph_from_dict, graph_to_dict, load_graph, save_graph

__all__ = ["load_model", "load_graph", "save_graph", "graph_to_dict", "graph_from_dict",
           "load_nir", "save_nir", "from_nir", "to_nir"]
