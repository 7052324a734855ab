"""ANN -> SNN conversion: torch.export graph -> IF-neuron Graph (see neurocomp.convert.pipeline)."""
from neurocomp.convert.pipeline import ann_forward, conversion_info, convert
from neurocomp.convert.options import ConvertOptions
from neurocomp.convert.pt2 import load_exported

__all__ = ["convert", "ConvertOptions", "conversion_info", "ann_forward", "load_exported"]
