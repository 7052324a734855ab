"""Conversion options, with defaults from the literature (SIAMSNN.md §5)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from neurocomp.errors import UserError
from neurocomp.ir.graph import RESETS

NORMALISATIONS = ("layer", "channel")
ENCODINGS = ("rate", "poisson", "current")
MAXPOOL = ("avg", "spiking", "error")


@dataclass(frozen=True)
class ConvertOptions:
    """How an ANN becomes an IF network.

    normalisation  "layer" or "channel": one activation scale lambda per layer, or per output
                   channel (Kim et al. 2020), each the `percentile` of the non-zero ReLU outputs
                   on the calibration set (Rueckauer et al. 2017: 99.9). Weights become
                   W * lambda_prev / lambda, biases b / lambda, thresholds 1.
    reset          "subtract" keeps the residual charge (the accurate choice, Rueckauer 2017);
                   "zero" loses it, but is what Lava/Loihi implement.
    v_init         initial potential as a fraction of the threshold: 0.5 rounds instead of
                   flooring spike counts (ECC, Wu et al. 2022); 0 is plain conversion.
    latency_compensation
                   every layer starts integrating its bias one tick per layer before its input
                   arrives (the Graph's 1-tick edges); subtract those ticks of bias from v_init.
                   Readouts so compensated have an initial state, which NIR cannot express.
    calibration_batches, batch_size
                   light calibration (Li et al. 2021): layer by layer, per channel, add the gap
                   between the ANN's normalised activation and the float SNN's rate (read-out:
                   potential / T vs logit) to the bias, from this many batches; 0 turns it off.
    calibrate_gain first divides each channel's weights and bias by the slope of SNN rate on
                   ANN activation (a per-row scale, so per-neuron weight levels survive); it
                   mostly repairs reset-to-zero, whose lost overshoot compresses high rates.
    calibration_rounds
                   gain and bias fits per layer, each on the previous round's SNN.
    timesteps      T the calibration and the error estimates simulate (plus one tick per layer).
    encoding       input: "rate" (deterministic), "poisson" (seeded) or "current" (analog values
                   into the first layer every tick; reference backend only).
    maxpool        "spiking" (default): a real max on rates, max(a, b) = b + relu(a - b) as a tree
                   of IF layers (neurocomp/convert/maxpool.py; ceil(log2 area) extra layers and
                   ticks); the pool must follow a ReLU (one right before a ReLU is moved after
                   it). On a digits CNN with max pooling it kept the ANN's accuracy (94.7 % float
                   SNN vs 83.6 % with "avg", T = 32). "avg": MaxPool2d becomes average pooling
                   (a SumPool, 1/area folded into the next weights), exact in rates; its cost is
                   the ANN's with average pooling. "error": refuse max pooling.
    pool_layers    each pool that follows a ReLU becomes its own IF layer (pool + 1x1 identity conv,
                   one more layer and tick); the next layer then reads C*k*k inputs, not the
                   (k - 1) * stride + size wide window the pool composes into (AlexNet's 3x3/2 pool
                   before a 5x5 conv: 1,200 instead of 5,808 inputs of 48 channels, under Loihi's
                   4,096 axons per core). Costs the pooled rate's quantisation to spikes.
    """

    normalisation: str = "layer"
    percentile: float = 99.9
    reset: str = "subtract"
    v_init: float = 0.5
    latency_compensation: bool = True
    calibration_batches: int = 4
    batch_size: int = 64
    calibrate_gain: bool = True
    calibration_rounds: int = 2
    timesteps: int = 32
    encoding: str = "rate"
    maxpool: str = "spiking"
    pool_layers: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        checks = ((self.normalisation in NORMALISATIONS, f"normalisation must be one of {NORMALISATIONS}"),
                  (0 < self.percentile <= 100, "percentile must lie in (0, 100]"),
                  (self.reset in RESETS, f"reset must be one of {RESETS}"),
                  (0 <= self.v_init < 1, "v_init must lie in [0, 1) (a fraction of the threshold)"),
                  (self.calibration_batches >= 0 and self.batch_size >= 1 and self.calibration_rounds >= 1,
                   "calibration_batches must be >= 0, batch_size and calibration_rounds >= 1"),
                  (self.timesteps >= 1, "timesteps must be >= 1"),
                  (self.encoding in ENCODINGS, f"encoding must be one of {ENCODINGS}"),
                  (self.maxpool in MAXPOOL, f"maxpool must be one of {MAXPOOL}"))
        for ok, msg in checks:
            if not ok:
                raise UserError(f"conversion option: {msg}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
