"""SiamSNN (our design, SIAMSNN.md §4): the SiamFC backbone as IF neurons, the correlation on chip.

One Graph serves the whole tracker. Its input is a search-size crop, pixels / 255 rate-coded
by the host; its outputs are

* ``embedding``: a read-out (non-spiking accumulator) of conv5 over the top-left e x e
  window. Fed the exemplar crop on the top-left of a zero canvas it equals conv5 of the
  exemplar alone: no layer pads, so those e x e outputs only see the exemplar's pixels.
* ``score``: a read-out of Correlation(conv5(search)), whose kernel is the exemplar
  embedding, bound into the cores when a track starts (neurocomp.bind).
* ``score_spikes`` (optional): an IF layer on the same correlation with two-status coding.

Schedule (``SiamSNNOptions.schedule``): "sequential" runs the three search scales one after
another through one copy of the search branch; "parallel" (``parallel_scales``) gives every
scale its own copy (its own Input, the same weights and thresholds, its own Correlation bound
with the one exemplar kernel), named ``NAME@k`` for scale k, so a frame costs the ticks of one
scale on ~3x the cores. The embedding head reads scale 0's conv5. The Graph's ``frame``
metadata (neurocomp.frames.FRAME_KEY) tells the compiler how many runs a frame takes.

Our formulas. With U(t) a read-out's potential after tick t (t = 1..T) in ANN units:

    exemplar kernel     K = U_embedding(T_z) / T_z
    per-tick similarity c_t = U_score(t) - U_score(t-1)  (K correlated with conv5's input at t)
    hybrid response     R = sum_t w_t c_t / sum_t w_t, with w_t = 1[t > tau0] ("drop" the
                        first tau0 ticks, whose rates have not settled), w_t = t ("linear"),
                        or w_t = 1 ("uniform": R = U(T) / T, the ANN's correlation as T grows)
    two-status spikes   IF neurons, threshold theta = K . K / (T - tau0) * T (the exemplar's
                        self-similarity spread over the fire window); ticks 0..tau0-1 integrate
                        only, then they fire with reset by subtraction (neurocomp.ir.twostatus);
                        R = spike count.

The tracker only ranks responses (min-shift, sum-normalise, arg-max), so the unknown
scale of K and a constant offset in R do not matter.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurocomp.frames import FRAME_KEY
from neurocomp.convert.options import ConvertOptions
from neurocomp.convert.pipeline import convert
from neurocomp.ir.graph import IF, Correlation, Crop, Flatten, Graph, Node, Output, Readout
from neurocomp.ir.twostatus import gate_init, two_status
from neurocomp.errors import FormatError, UserError
from neurocomp.frontend.ptfile import load_graph, save_graph
from neurocomp.models.siamfc import CONFIGS, SiamConfig, SiamFC, build
from neurocomp.models.tracker import TrackerConfig, box_centre, crop, exemplar_side, to_chw
from neurocomp.models.tracking_data import benchmark

EMBEDDING, SCORE, SCORE_SPIKES = "embedding", "score", "score_spikes"
METADATA_KEY = "siamsnn"
GATES = SCORE_SPIKES + ".gate"  # the two-status gate neurons (neurocomp.ir.twostatus)
WEIGHTINGS = ("drop", "linear", "uniform")
SCHEDULES = ("sequential", "parallel")


@dataclass(frozen=True)
class SiamSNNOptions:
    """Conversion and coding choices. reset "subtract" for TrueNorth and the float SNN,
    "zero" for Loihi (Lava's LIF); tau0 both drops transient ticks from the hybrid response
    and sets the two-status integrate-only window."""

    timesteps: int = 20
    reset: str = "subtract"
    percentile: float = 99.9
    normalisation: str = "layer"
    calibration_samples: int = 48
    calibration_batches: int = 2   # light SNN calibration rounds' batches (0: normalisation only, for compile-size runs)
    maxpool: str = "spiking"       # ConvertOptions.maxpool: "spiking" (exact max, a tree of IF layers) or "avg"
    pool_layers: bool = False      # ConvertOptions.pool_layers: pools as their own IF layers (full config on Loihi)
    tau0: int = 4
    weighting: str = "drop"        # WEIGHTINGS: how the tracker reads the score potentials (with timesteps, tau0)
    spiking_score: bool = True
    kick: float = 16.0          # two-status offset B, in thresholds (> the charge of tau0 ticks)
    kick_pairs: int = 4         # gate pairs delivering B, B / 4 each: a weight a core can hold
    seed: int = 0
    schedule: str = "sequential"   # SCHEDULES: the search scales one after another, or each on its own cores
    scales: int = 3                # search scales per frame (TrackerConfig.scale_num)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES or self.scales < 1:
            raise ValueError(f"schedule must be one of {SCHEDULES} and scales >= 1")


def calibration_inputs(model: SiamFC, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3, X, X) in [0, 1]: search crops around targets of training clips, every other one
    an exemplar crop on the top-left of a zero canvas, as the chip sees both."""
    cfg = model.config
    clips = benchmark("train", max(2, n // 8), 24, seed=seed + 7)
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 3, cfg.search_size, cfg.search_size), dtype=np.float32)
    for i in range(n):
        clip = clips[rng.integers(len(clips))]
        t = int(rng.integers(len(clip.frames)))
        frame, box = clip.frames[t], clip.boxes[t]
        side = exemplar_side(box[2], box[3])
        fill = frame.reshape(-1, 3).mean(axis=0)
        if i % 2:
            z = crop(frame, box_centre(box), side, cfg.exemplar_size, fill)
            out[i, :, :cfg.exemplar_size, :cfg.exemplar_size] = to_chw(z)
        else:
            out[i] = to_chw(crop(frame, box_centre(box), side * cfg.search_size / cfg.exemplar_size,
                                 cfg.search_size, fill))
    return out / 255.0


def build_siamsnn(model: SiamFC, opts: SiamSNNOptions = SiamSNNOptions(), kernel: np.ndarray | None = None) -> Graph:
    """The SiamSNN Graph; `kernel` (C, e, e) is the placeholder the correlation compiles with
    (default: ones, a dense kernel, so the compiled structure holds every synapse)."""
    cfg = model.config
    backbone = pixel_units(model)
    x = calibration_inputs(model, opts.calibration_samples, opts.seed)
    method = ConvertOptions(normalisation=opts.normalisation, percentile=opts.percentile, reset=opts.reset,
                            timesteps=opts.timesteps, encoding="rate", calibration_batches=opts.calibration_batches, batch_size=min(8, opts.calibration_samples),
                            maxpool=opts.maxpool, pool_layers=opts.pool_layers,
                            seed=opts.seed)
    return siamsnn_graph(convert(backbone, x, input_shape=tuple(x.shape[1:]), method=method), cfg, opts, kernel)


def siamsnn_graph(backbone: Graph, cfg: SiamConfig, opts: SiamSNNOptions = SiamSNNOptions(),
                  kernel: np.ndarray | None = None) -> Graph:
    """The SiamSNN Graph around a spiking backbone whose conv5 ends in a read-out: the converter's, or the
    integer one neurocomp.train.to_graph makes of a QAT-trained backbone (models/train_siamsnn.py)."""
    e = cfg.embed_size(cfg.exemplar_size)
    k = np.ones((cfg.channels[-1], e, e)) if kernel is None else np.asarray(kernel, dtype=np.float64)
    g = _heads(backbone, e, k, opts)
    g = two_status(g, SCORE_SPIKES, opts.tau0, opts.kick, opts.kick_pairs) if opts.spiking_score else g
    record = {"config": cfg.to_json(), "options": dataclasses.asdict(dataclasses.replace(opts, schedule="sequential"))}
    return scheduled(Graph(g.nodes, g.edges, {**g.metadata, METADATA_KEY: json.dumps(record, sort_keys=True)}),
                     opts.schedule, opts.scales)


def scheduled(g: Graph, schedule: str, scales: int = 3) -> Graph:
    """A sequential SiamSNN Graph under `schedule` (module docstring), its record and frame metadata set."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    record = siamsnn_record(g)
    if record["options"].get("schedule", "sequential") != "sequential":
        raise UserError("reschedule a sequential SiamSNN (this one is already "
                        f"{record['options']['schedule']})")
    g = parallel_scales(g, scales) if schedule == "parallel" else g
    record["options"] |= {"schedule": schedule, "scales": scales}
    read = [name for base in (SCORE, SCORE_SPIKES) for name in scale_names(g, base, schedule, scales)]
    frame = {"schedule": schedule, "runs": 1 if schedule == "parallel" else scales, "units": scales,
             "unit": "search scale", "read": [r for r in read if r in g.node_map],
             "ticks": int(record["options"]["timesteps"])}
    return Graph(g.nodes, g.edges, {**g.metadata, METADATA_KEY: json.dumps(record, sort_keys=True),
                                    FRAME_KEY: json.dumps(frame, sort_keys=True)})


def parallel_scales(g: Graph, scales: int) -> Graph:
    """One copy of the search branch per scale (every node an Output other than the embedding's
    depends on, renamed NAME@k); the embedding head, kept once, reads scale 0's copy. Copies
    share weights and thresholds, so each quantises and computes as the sequential branch does."""
    search = _ancestors(g, [o.name for o in g.outputs if o.name != "out.embedding"])
    nodes: list[Node] = []
    for k in range(scales):
        nodes += [dataclasses.replace(n, name=f"{n.name}@{k}") for n in g.nodes if n.name in search]
    nodes += [n for n in g.nodes if n.name not in search]
    rename = lambda name, k: f"{name}@{k}" if name in search else name  # noqa: E731
    edges = [(rename(a, k), rename(b, k)) for k in range(scales) for a, b in g.edges if b in search]
    edges += [(rename(a, 0), b) for a, b in g.edges if b not in search]
    return Graph(tuple(nodes), tuple(edges), g.metadata)


def _ancestors(g: Graph, names: list[str]) -> set[str]:
    seen, todo = set(names), list(names)
    while todo:
        for p in g.predecessors(todo.pop()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def readout_of(g: Graph) -> dict[str, int | str]:
    """The read-out a SiamSNN was built for: ticks per search run, tau0 and the hybrid weighting (chip_tracker's
    ChipOptions fields); one built before weightings were recorded reads "drop"."""
    opts = siamsnn_record(g)["options"]
    return {"timesteps": int(opts["timesteps"]), "tau0": int(opts["tau0"]), "weighting": opts.get("weighting", "drop")}


def schedule_of(g: Graph) -> tuple[str, int]:
    """(schedule, scales) of a SiamSNN Graph; one built before schedules existed is sequential."""
    opts = siamsnn_record(g)["options"]
    return opts.get("schedule", "sequential"), int(opts.get("scales", 3))


def scale_names(g: Graph, name: str, schedule: str | None = None, scales: int | None = None) -> tuple[str, ...]:
    """`name`'s layer per scale: (name,) when the scales share it, else name@0 .. name@S-1."""
    if schedule is None:
        schedule, scales = schedule_of(g) if METADATA_KEY in g.metadata else ("sequential", 1)
    return tuple(f"{name}@{k}" for k in range(scales)) if schedule == "parallel" else (name,)


def siamsnn_record(g: Graph) -> dict:
    """The SiamFC config and options a SiamSNN Graph was built with; a UserError if it is not one."""
    text = g.metadata.get(METADATA_KEY)
    if not text:
        raise UserError("this model is not a SiamSNN (no 'siamsnn' metadata); build one with "
                        "python -m neurocomp.models.siamsnn")
    return json.loads(text)


def tracker_config(g: Graph) -> TrackerConfig:
    cfg = siamsnn_record(g)["config"]
    config = SiamConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return TrackerConfig.from_model(config, scale_num=schedule_of(g)[1])


def pixel_units(model: SiamFC) -> torch.nn.Module:
    """The backbone taking pixels / 255 (what rate coding carries), in eval mode."""
    backbone = copy.deepcopy(model.backbone).eval()
    with torch.no_grad():
        backbone[0].weight.mul_(255.0)
    return backbone


def _heads(g: Graph, e: int, kernel: np.ndarray, opts: SiamSNNOptions) -> Graph:
    """Replace the converted conv5 read-out with the embedding window, the score read-out and
    (optionally) the spiking score layer, each through its own copy of conv5."""
    nodes = g.node_map
    readout = next(n for n in g.nodes if isinstance(n, Readout))
    conv5_name = g.predecessors(readout.name)[0]
    conv5, feed = _bias_into_conv(nodes[conv5_name], readout), g.predecessors(conv5_name)[0]
    corner = lambda a: a[:, :e, :e] if a.ndim == 3 else a  # noqa: E731
    heads: list[Node] = [
        Crop("embedding.crop", 0, 0, e, e),
        Readout(EMBEDDING, v_init=corner(np.asarray(readout.v_init)), bias=corner(np.asarray(readout.bias))),
        Output("out.embedding"), dataclasses.replace(conv5, name="conv5.score"), _correlation("corr.score", kernel), Readout(SCORE),
        Output("out.score")]
    edges = [(conv5_name, "embedding.crop"), ("embedding.crop", EMBEDDING), (EMBEDDING, "out.embedding"),
             (feed, "conv5.score"), ("conv5.score", "corr.score"), ("corr.score", SCORE), (SCORE, "out.score")]
    if opts.spiking_score:
        heads += [dataclasses.replace(conv5, name="conv5.spikes"), _correlation("corr.spikes", kernel),
                  Flatten("corr.flat"), IF(SCORE_SPIKES, threshold=1.0, reset=opts.reset), Output("out.spikes")]
        edges += [(feed, "conv5.spikes"), ("conv5.spikes", "corr.spikes"), ("corr.spikes", "corr.flat"),
                  ("corr.flat", SCORE_SPIKES), (SCORE_SPIKES, "out.spikes")]
    drop = {readout.name} | {n.name for n in g.nodes if isinstance(n, Output)}
    kept = tuple(n for n in g.nodes if n.name not in drop)
    kept_edges = tuple((a, b) for a, b in g.edges if a not in drop and b not in drop)
    return Graph(kept + tuple(heads), kept_edges + tuple(edges), g.metadata)


def _bias_into_conv(conv5: Node, readout: Readout) -> Node:
    """conv5 carrying the read-out's bias (to_graph puts it there) for the score branches, so the exemplar is
    correlated with the biased features the ANN correlates; the embedding keeps the read-out's own bias and
    initial potential, so it equals the trained backbone's read-out tick by tick (tests/test_siamsnn_native.py)."""
    bias = np.broadcast_to(np.asarray(readout.bias, dtype=np.float64).reshape(-1), (conv5.weight.shape[0],))
    if not np.any(bias):
        return conv5
    own = np.zeros_like(bias) if conv5.bias is None else np.asarray(conv5.bias, dtype=np.float64)
    return dataclasses.replace(conv5, bias=own + bias)


def _correlation(name: str, kernel: np.ndarray) -> Correlation:
    return Correlation(name, np.asarray(kernel, dtype=np.float64)[None])


def with_kernel(g: Graph, kernel: np.ndarray, timesteps: int, tau0: int) -> Graph:
    """`g` with every Correlation bound to `kernel` (C, e, e); the spiking branch's copy is
    divided by theta (module docstring), so its threshold and two-status offset stay 1 and B,
    and the two-status gates are retimed to tau0 (>= 1: the kick needs one tick to arrive)."""
    k = np.asarray(kernel, dtype=np.float64)[None]
    tau0 = max(int(tau0), 1)
    theta = max(float(np.sum(k * k)), 1e-12) * timesteps / max(timesteps - tau0, 1)

    def bound(n: Node) -> Node:
        base = n.name.split("@")[0]   # a scale's copy binds as the sequential node does
        if isinstance(n, Correlation):
            return dataclasses.replace(n, weight=k / theta if base == "corr.spikes" else k)
        if base == GATES:
            return dataclasses.replace(n, v_init=gate_init(tau0, n.v_init.size // 2))
        return n

    return Graph(tuple(bound(n) for n in g.nodes), g.edges, g.metadata)


def hybrid_response(potential: np.ndarray, tau0: int, weighting: str = "drop") -> np.ndarray:
    """R from a score read-out's potential trace (batch, T, ...) (module docstring)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    u = np.asarray(potential, dtype=np.float64)
    c = np.diff(u, axis=1, prepend=0.0)
    t = np.arange(1, u.shape[1] + 1, dtype=np.float64)
    w = {"drop": (t > tau0).astype(np.float64), "linear": t, "uniform": np.ones_like(t)}[weighting]
    w = w.reshape((1, -1) + (1,) * (u.ndim - 2))
    return (w * c).sum(axis=1) / max(float(w.sum()), 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description="Convert a trained SiamFC (state_dict) into a SiamSNN .pt, or "
                                             "reschedule a sequential SiamSNN .pt")
    ap.add_argument("weights", help="state_dict from neurocomp.models.train_siamfc, or a sequential SiamSNN .pt "
                                    "(then only --schedule applies: the same neurons, rescheduled)")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="micro")
    ap.add_argument("--reset", choices=("subtract", "zero"), default="subtract", help="zero for Loihi")
    ap.add_argument("--timesteps", type=int, default=SiamSNNOptions.timesteps)
    ap.add_argument("--tau0", type=int, default=SiamSNNOptions.tau0)
    ap.add_argument("--schedule", choices=SCHEDULES, default=SiamSNNOptions.schedule,
                    help="search scales one after another, or in parallel on their own cores (~3x the cores)")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    graph = _siamsnn_graph(Path(args.weights))
    if graph is not None:
        save_graph(scheduled(graph, args.schedule), Path(args.out))
        print(f"wrote {args.out}")
        return
    model = build(args.config)
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    opts = SiamSNNOptions(timesteps=args.timesteps, reset=args.reset, tau0=args.tau0, schedule=args.schedule)
    save_graph(build_siamsnn(model.eval(), opts), Path(args.out))
    print(f"wrote {args.out}")


def _siamsnn_graph(path: Path) -> Graph | None:
    """The SiamSNN Graph saved at `path`, or None when it holds something else (a state_dict)."""
    try:
        g = load_graph(path)
    except FormatError:
        return None
    return g if METADATA_KEY in g.metadata else None


if __name__ == "__main__":
    main()
