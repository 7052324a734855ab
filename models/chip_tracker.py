"""SiamFC-3s tracking with the SiamSNN on an emulated chip (or its float reference).

Per track: the exemplar crop runs ``exemplar_ticks`` ticks on the top-left of a zero
canvas, K = U_embedding / ticks is read from the host, and bound into the correlation
cores (neurocomp.bind: only those cores' tables change). Per frame, by the Graph's
schedule (models/siamsnn.py): "sequential" runs the three scales one after another through
one copy of the network (emulated as a batch of 3, counted as 3 runs); "parallel" feeds each
scale to its own copy in one run. Each run is ``timesteps`` ticks plus the mapping's lag; the
response is the hybrid read-out (or the two-status spike counts). Counters accumulate per
frame for the energy, the chip time and the frames per second at the chip's tick.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from neurocomp.backends import emulator, reference
from neurocomp.bind import bind
from neurocomp.errors import UserError
from neurocomp.safewrite import Kind, write_file
from neurocomp.frames import mapping_lags
from neurocomp.ir.graph import Graph, Output
from neurocomp.ir.layers import lower
from neurocomp.program import Program
from neurocomp.runner import summarise
from neurocomp.target import Target
from neurocomp.models import otb
from neurocomp.models.siamsnn import (EMBEDDING, GATES, SCORE, SCORE_SPIKES, hybrid_response, readout_of,
                                      scale_names, tracker_config, with_kernel)
from neurocomp.models.tracker import Tracker, TrackerConfig

if TYPE_CHECKING:
    from neurocomp.models.tracking_data import Clip

SCORES = ("potential", "spikes")
BACKENDS = ("emulator", "reference")


@dataclass(frozen=True)
class ChipOptions:
    timesteps: int = 20          # ticks per search frame (all scales in one batch)
    exemplar_ticks: int = 64     # ticks for the exemplar, once per track
    tau0: int = 4                # transient ticks dropped / two-status integrate-only window
    weighting: str = "drop"      # hybrid response weights (siamsnn.hybrid_response)
    score: str = "potential"     # "potential": hybrid read-out; "spikes": two-status spike counts
    backend: str = "emulator"    # or "reference": the float SNN the program was compiled from
    device: str | None = None    # the emulator on numpy (None) or torch's "cpu" / "cuda": the same integers

    def __post_init__(self) -> None:
        if self.score not in SCORES or self.backend not in BACKENDS:
            raise ValueError(f"score must be one of {SCORES} and backend one of {BACKENDS}")


@dataclass
class ChipStats:
    """Totals over everything scored so far (exemplars included)."""

    frames: int = 0
    ticks: int = 0
    chip_seconds: float = 0.0
    energy_j: float = 0.0
    wall_s: float = 0.0
    rebinds: list[int] = field(default_factory=list)   # cores rewritten per binding

    def per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {"ticks": self.ticks / n, "chip_ms": 1e3 * self.chip_seconds / n, "energy_uj": 1e6 * self.energy_j / n,
                "fps": n / self.chip_seconds if self.chip_seconds else float("nan"), "emulator_s": self.wall_s / n}


@dataclass(frozen=True)
class Exemplar:
    """A track's exemplar: its kernel, the bound graph and (on the emulator) the bound program."""

    kernel: np.ndarray
    graph: Graph
    program: Program | None
    prepared: emulator.Prepared | None = None   # the bound program set up for the emulator, once per track


class ChipSiamese:
    """The embed / score pair a Tracker calls, backed by a compiled SiamSNN program."""

    def __init__(self, graph: Graph, program: Program | None, target: Target | None, opts: ChipOptions) -> None:
        if opts.backend == "emulator" and (program is None or target is None):
            raise ValueError("the emulator backend needs a compiled program and its target")
        self.graph, self.program, self.target, self.opts = graph, program, target, opts
        self.inputs = tuple(i.name for i in graph.inputs)   # one per scale (parallel) or one for all
        self.canvas = graph.inputs[0].shape
        self.stats = ChipStats()
        self.prepared = emulator.prepare(program, target) if opts.backend == "emulator" else None
        self.lag = lags(graph, program) if opts.backend == "emulator" else {}

    @property
    def map_shape(self) -> tuple[int, ...]:
        """(s, s): one scale's score map."""
        return self.graph.shape(scale_names(self.graph, SCORE)[0])[1:]

    @property
    def read(self) -> tuple[str, ...]:
        """The score layer this tracker reads, per scale copy."""
        return scale_names(self.graph, SCORE_SPIKES if self.opts.score == "spikes" else SCORE)

    def embed(self, z: np.ndarray) -> Exemplar:
        """(1, 3, Z, Z) raw pixels -> K (C, e, e) in ANN units, bound into the correlation cores. The exemplar
        runs on the first input (whose copy holds the embedding head); other copies get zeros."""
        canvas = np.zeros((1,) + self.canvas)
        size = z.shape[-1]
        canvas[0, :, :size, :size] = z[0] / 255.0
        ticks = self.opts.exemplar_ticks
        x = {name: canvas if k == 0 else np.zeros_like(canvas) for k, name in enumerate(self.inputs)}
        u = self._run(self.graph, self.program, self.prepared, x, ticks, (EMBEDDING,)).potentials[EMBEDDING]
        return self.bind(u[0, -1] / ticks)

    def bind(self, kernel: np.ndarray) -> Exemplar:
        """Write `kernel` into the program: only the cores of the score layers it reads (and, for the
        two-status score, their gates) change, in every scale's copy."""
        graph = with_kernel(self.graph, kernel, self.opts.timesteps, self.opts.tau0)
        if self.opts.backend == "reference":
            return Exemplar(kernel, graph, None)
        gates = scale_names(graph, GATES) if self.opts.score == "spikes" else ()
        bound = bind(self.program, graph, self.target, also=gates, read=self.read)
        self.stats.rebinds.append(int(bound.changed_cores.size))
        prepared = emulator.prepare(bound.program, self.target, base=self.prepared, changed=bound.changed_cores)
        return Exemplar(kernel, graph, bound.program, prepared)

    def score(self, exemplar: Exemplar, x: np.ndarray) -> np.ndarray:
        """(S, 3, X, X) raw pixels -> (S, s, s) responses: a batch of S through one input, or scale k on input k."""
        read, x = self.read, x / 255.0
        feed = {self.inputs[0]: x} if len(self.inputs) == 1 else {n: x[k:k + 1] for k, n in enumerate(self.inputs)}
        result = self._run(exemplar.graph, exemplar.program, exemplar.prepared, feed, self.opts.timesteps, read)
        if self.opts.score == "spikes":
            spikes = np.concatenate([result.spikes[r].sum(axis=1) for r in read])
            return spikes.reshape((len(x),) + self.map_shape).astype(np.float64)
        u = np.concatenate([result.potentials[r] for r in read])
        return hybrid_response(u, self.opts.tau0, self.opts.weighting)[:, 0]

    def _run(self, graph: Graph, program: Program | None, prepared: emulator.Prepared | None,
             x: dict[str, np.ndarray], ticks: int, layers: tuple[str, ...]):
        """`ticks` graph ticks of `layers`: the chip runs the largest `lag` more, and each layer's first `lag`
        ticks (and any after its `ticks`) are dropped."""
        if self.opts.backend == "reference":
            return reference.run(lower(graph), x, ticks=ticks)
        lag = {name: self.lag[name] for name in layers}
        run = ticks + max(lag.values())
        result = emulator.run(prepared, self.target, x, ticks=run, record=layers, device=self.opts.device)
        summary = summarise(result, program, "emulator")
        # A batch is runs one after another on one copy (the sequential scales); a parallel frame is one run.
        self.stats.ticks += run * result.batch
        self.stats.chip_seconds += summary["realtime"]["tick_s"] * run * result.batch
        self.stats.energy_j += summary["energy"]["per_inference_j"] * result.batch
        self.stats.wall_s += result.wall_s
        self.stats.frames += 0 if layers == (EMBEDDING,) else 1
        window = lambda d: {k: v[:, lag[k]:lag[k] + ticks] for k, v in d.items() if k in lag}  # noqa: E731
        return dataclasses.replace(result, spikes=window(result.spikes), potentials=window(result.potentials),
                                   ticks=ticks)


def lags(graph: Graph, program: Program) -> dict[str, int]:
    """Ticks each layer an Output reads runs behind the graph on this program (fan-in splits and splitters)."""
    nodes = graph.node_map
    return mapping_lags(graph, program.netlist, [a for a, b in graph.edges if isinstance(nodes[b], Output)])


def chip_tracker(siamese: ChipSiamese, config: TrackerConfig) -> Tracker:
    return Tracker(siamese.embed, siamese.score, config)


def load_tracker(program_dir: Path, **overrides: Any) -> tuple[ChipSiamese, TrackerConfig]:
    """A compiled SiamSNN program (its model.pt carries the SiamFC geometry) as a tracker: ChipOptions from
    the read-out the SiamSNN was built for (siamsnn.readout_of), with `overrides` (None values ignored)."""
    from neurocomp.program import Program

    program = Program.load(program_dir)
    graph = program.source_graph()
    config = tracker_config(graph)
    opts = ChipOptions(**{**readout_of(graph), **{k: v for k, v in overrides.items() if v is not None}})
    if opts.tau0 >= opts.timesteps:
        raise UserError(f"--tau0 ({opts.tau0}) must be below --ticks ({opts.timesteps})")
    if opts.score == "spikes" and SCORE_SPIKES not in graph.node_map:
        raise UserError("this SiamSNN has no spiking score layer; use --score potential")
    return ChipSiamese(graph, program, program.target, opts), config


def track_clip(siamese: ChipSiamese, config: TrackerConfig, clip: "Clip",
               on_frame: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Track one clip; boxes, OTB metrics and per-frame chip figures. `on_frame(k)` follows each tracked frame."""
    start = time.perf_counter()
    boxes = chip_tracker(siamese, config).track(clip, on_frame)
    result = otb.ope([boxes], [clip.boxes])
    return {"boxes": boxes, "auc": result.auc, "precision": result.precision,
            "per_frame": siamese.stats.per_frame(), "cores_rewritten": siamese.stats.rebinds,
            "wall_s": time.perf_counter() - start}


GIF_COMMENT = b"neurocomp.track"


def _not_our_gif(path: Path) -> str | None:
    """safewrite's test for a GIF write_gif may replace: it carries our comment."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            comment = img.info.get("comment")
    except Exception:  # Pillow raises several types on files that are not images
        return "not a readable image"
    return None if comment == GIF_COMMENT else "no neurocomp comment"


GIF_KIND = Kind("neurocomp track GIF", False, _not_our_gif)


def write_gif(path: Path, clip: "Clip", boxes: np.ndarray, every: int = 1, inputs: tuple[Path, ...] = ()) -> None:
    """Frames with the true (green) and predicted (red) boxes, under the neurocomp.safewrite policy (marked
    with a GIF comment so that only such a file is replaced)."""
    from PIL import Image

    frames = [Image.fromarray(_draw(_draw(f.copy(), t, (0, 200, 0)), p, (230, 0, 0)))
              for f, t, p in list(zip(clip.frames, clip.boxes, boxes))[::every]]

    def write(tmp: Path) -> None:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0,
                       comment=GIF_COMMENT)

    write_file(path, GIF_KIND, write, inputs)


def _draw(img: np.ndarray, box: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    x0, y0 = int(np.clip(round(box[0]), 0, w - 1)), int(np.clip(round(box[1]), 0, h - 1))
    x1, y1 = int(np.clip(round(box[0] + box[2] - 1), 0, w - 1)), int(np.clip(round(box[1] + box[3] - 1), 0, h - 1))
    img[y0:y1 + 1, [x0, x1]] = colour
    img[[y0, y1], x0:x1 + 1] = colour
    return img
