"""SiamFC-3s tracking with the SiamSNN on an emulated chip (or its float reference).

Per track: the exemplar crop runs ``exemplar_ticks`` ticks on the top-left of a zero
canvas, K = U_embedding / ticks is read from the host, and bound into the correlation
cores (neurocomp.bind: only those cores' tables change). Per frame: the three scales
run as one batch of ``timesteps`` ticks; the response is the hybrid read-out (or the
two-status spike counts), see models/siamsnn.py. Counters accumulate per frame for
the energy, the chip time and the frames per second at the chip's tick.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurocomp.backends import emulator, reference
from neurocomp.bind import bind
from neurocomp.errors import UserError
from neurocomp.safewrite import Kind, write_file
from neurocomp.ir import sums
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Graph
from neurocomp.ir.layers import lower
from neurocomp.partition.delays import timing
from neurocomp.program import Program
from neurocomp.runner import summarise
from neurocomp.target import Target
from neurocomp.models import otb
from neurocomp.models.siamsnn import EMBEDDING, GATES, SCORE, SCORE_SPIKES, hybrid_response, tracker_config, with_kernel
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
        self.canvas = graph.inputs[0].shape
        self.stats = ChipStats()
        self.prepared = emulator.prepare(program, target) if opts.backend == "emulator" else None
        self.lag = lags(graph, program) if opts.backend == "emulator" else {}

    def embed(self, z: np.ndarray) -> Exemplar:
        """(1, 3, Z, Z) raw pixels -> K (C, e, e) in ANN units, bound into the correlation cores."""
        canvas = np.zeros((1,) + self.canvas)
        size = z.shape[-1]
        canvas[0, :, :size, :size] = z[0] / 255.0
        ticks = self.opts.exemplar_ticks
        u = self._run(self.graph, self.program, self.prepared, canvas, ticks, EMBEDDING).potentials[EMBEDDING]
        return self.bind(u[0, -1] / ticks)

    def bind(self, kernel: np.ndarray) -> Exemplar:
        """Write `kernel` into the program: only the cores of the score layer it reads (and, for the
        two-status score, its gates) change."""
        graph = with_kernel(self.graph, kernel, self.opts.timesteps, self.opts.tau0)
        if self.opts.backend == "reference":
            return Exemplar(kernel, graph, None)
        spikes = self.opts.score == "spikes"   # bind only the score layer this tracker reads
        bound = bind(self.program, graph, self.target, also=(GATES,) if spikes else (),
                     read=(SCORE_SPIKES if spikes else SCORE,))
        self.stats.rebinds.append(int(bound.changed_cores.size))
        return Exemplar(kernel, graph, bound.program, emulator.prepare(bound.program, self.target))

    def score(self, exemplar: Exemplar, x: np.ndarray) -> np.ndarray:
        """(S, 3, X, X) raw pixels -> (S, s, s) responses."""
        layer = SCORE_SPIKES if self.opts.score == "spikes" else SCORE
        result = self._run(exemplar.graph, exemplar.program, exemplar.prepared, x / 255.0, self.opts.timesteps, layer)
        if self.opts.score == "spikes":
            spikes = result.spikes[SCORE_SPIKES].sum(axis=1)
            return spikes.reshape((len(x),) + exemplar.graph.shape(SCORE)[1:]).astype(np.float64)
        return hybrid_response(result.potentials[SCORE], self.opts.tau0, self.opts.weighting)[:, 0]

    def _run(self, graph: Graph, program: Program | None, prepared: emulator.Prepared | None, x: np.ndarray,
             ticks: int, layer: str):
        """`ticks` graph ticks of `layer`: the chip runs `lag` more, and its first `lag` ticks are dropped."""
        if self.opts.backend == "reference":
            return reference.run(lower(graph), {graph.inputs[0].name: x}, ticks=ticks)
        lag = self.lag[layer]
        result = emulator.run(prepared, self.target, {graph.inputs[0].name: x}, ticks=ticks + lag, record=(layer,))
        summary = summarise(result, program, self.target, "emulator")
        # One chip holds one copy of the network, so the scales of a frame run one after another.
        self.stats.ticks += (ticks + lag) * result.batch
        self.stats.chip_seconds += summary["realtime"]["tick_s"] * (ticks + lag) * result.batch
        self.stats.energy_j += summary["energy"]["per_inference_j"] * result.batch
        self.stats.wall_s += result.wall_s
        self.stats.frames += 0 if layer == EMBEDDING else 1
        return dataclasses.replace(result, spikes={k: v[:, lag:] for k, v in result.spikes.items()},
                                   potentials={k: v[:, lag:] for k, v in result.potentials.items()}, ticks=ticks)


def lags(graph: Graph, program: Program) -> dict[str, int]:
    """Ticks each read layer runs behind the graph on this program (fan-in splits and splitters add them)."""
    depth = timing(lower(fold_linear(graph))).latency
    n = program.netlist
    latency, table = n.notes.get("latency", {}), n.notes.get(sums.KEY, {})
    return {name: max(int(latency.get(p, depth[name])) for p in table.get(name, [name])) - depth[name]
            for name in (EMBEDDING, SCORE, SCORE_SPIKES) if name in depth}


def chip_tracker(siamese: ChipSiamese, config: TrackerConfig) -> Tracker:
    return Tracker(siamese.embed, siamese.score, config)


def load_tracker(program_dir: Path, opts: ChipOptions) -> tuple[ChipSiamese, TrackerConfig]:
    """A compiled SiamSNN program (its model.pt carries the SiamFC geometry) as a tracker."""
    from neurocomp.frontend.ptfile import load_graph
    from neurocomp.program import load
    from neurocomp.runner import program_target

    program = load(program_dir)
    graph = load_graph(Path(program_dir) / "model.pt")
    config = tracker_config(graph)
    if opts.score == "spikes" and SCORE_SPIKES not in graph.node_map:
        raise UserError("this SiamSNN has no spiking score layer; use --score potential")
    return ChipSiamese(graph, program, program_target(Path(program_dir)), opts), config


def track_clip(siamese: ChipSiamese, config: TrackerConfig, clip: "Clip") -> dict[str, Any]:
    """Track one clip; boxes, OTB metrics and per-frame chip figures."""
    start = time.perf_counter()
    boxes = chip_tracker(siamese, config).track(clip)
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
