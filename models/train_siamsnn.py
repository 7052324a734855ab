"""Train a core-native SiamSNN: SiamFC in the target's native shape, QAT at T ticks, the SiamSNN of its integers.

    python -m neurocomp.models.train_siamsnn --config micro --out-dir models

Three stages, each written to its own file in the output folder, so a stopped run resumes at the stage it
reached (a file is written whole or not at all):

1. float: SiamFC in models/native.py's TrueNorth shape (every conv neuron reads one core's axons; the shape
   is native on Loihi too), trained by train_siamfc's recipe -> siamfc_<config>_native.pt (+ .json);
2. qat, per target: the backbone (pixels / 255 in, BN folded) as a neurocomp.train QATNet -- QCFS activations
   with T levels, weights on the target's sets, the last epochs through the target's model of its neuron --
   trained from the float weights on the float net's loss (balanced logistic loss of the correlation head)
   -> siamsnn_<config>_qat_<target>.pt (the QATNet's state_dict);
3. graph, per target: neurocomp.train.to_graph's integer backbone, after CHIP_EPOCHS of chip-in-the-loop
   fine-tuning through the compiled program's surrogate (`chip_finetune`), under SiamSNN's heads
   (models/siamsnn.py) -> siamsnn_<config>_<target>.pt. Its layers compile exactly: the chip holds the trained
   integers.

Deterministic: fixed seeds, two torch threads, fresh training clips every epoch (train photos only).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import UserError
from neurocomp.frames import mapping_lags
from neurocomp.frontend.ptfile import save_graph, save_torch, torch_kind
from neurocomp.models.native import native_config
from neurocomp.models.siamfc import CONFIGS, SiamConfig, SiamFC
from neurocomp.models.siamsnn import SCHEDULES, SiamSNNOptions, calibration_inputs, pixel_units, siamsnn_graph
from neurocomp.models.tracker import Tracker, TrackerConfig
from neurocomp.models.tracking_data import benchmark
from neurocomp.models.train_siamfc import TrainOptions, balanced_loss, pair_epoch, train
from neurocomp.safewrite import Kind, check, write_file
from neurocomp.target import load_target
from neurocomp.ir.graph import Graph, Readout
from neurocomp.train import QATNet, Surrogate, deploy_for, finetune, from_module, to_graph, training_info

TARGETS = ("truenorth", "loihi")
# The tracker's read-out of a QAT SiamSNN: 20 ticks per search run (the real-time budget at 1 ms), the first 4
# dropped (the 5-layer pipeline filling), so the score is read over the 16 ticks QCFS counts. Chosen on training
# clips by the correlation of the float SNN's response maps with the quantised ANN's (12 pairs): TrueNorth 0.86,
# Loihi 0.62, against 0.81 and 0.56 for 16 ticks read whole; 21 ticks (T + depth) gain 0.01 at 47.6 FPS.
READOUT = {"timesteps": 20, "tau0": 4, "weighting": "drop"}
# Chip-in-the-loop epochs per target (stage 3), chosen on training-photo clips (micro, 8 clips x 25 frames, seed
# 31337; AUC / the float ANN's): Loihi's chip 0.891 -> 1.074 (its float SNN 0.969 -> 1.065: reset to zero's timing
# loss is what the surrogate trains away), TrueNorth's chip 1.013 -> 0.952, so TrueNorth skips it. Training the
# biases too (per neuron) gave Loihi 1.018 and TrueNorth 1.013.
CHIP_EPOCHS = {"truenorth": 0, "loihi": 10}
CHIP_SAMPLES = 192   # calibration crops of training clips per chip-in-the-loop epoch


@dataclass(frozen=True)
class QATOptions:
    timesteps: int = 16         # T = QCFS levels = ticks per search run on chip
    epochs: int = 6
    chip_epochs: int = 2        # the last epochs through the target's neuron model (Loihi: reset to zero)
    pairs_per_epoch: int = 640
    batch: int = 16
    clips_per_epoch: int = 16
    frames_per_clip: int = 48
    lr: float = 1e-4
    percentile: float = 99.9    # initial lambda per layer, over calibration crops
    seed: int = 0


@dataclass(frozen=True)
class Recipe:
    """A config's TrueNorth weight modes (spiking layers, read-out), QAT schedule and chip-in-the-loop stage.

    micro and mini: "bits" -- "trinary" everywhere halved micro's cores (3,570 against 5,460 per scale) but its
    quantised ANN lost 16 % of the float AUC and its float SNN 36 % on training-photo clips (6 epochs at 1e-4),
    where "bits" kept 98 %. micro3 is shaped for one chip, which only paired axons reach: trinary conv1-4 under
    a "bits" conv5 (which the bound correlation kernel composes at any precision), trained 10 epochs at 1e-3
    so that the trinary weights can move (chosen before any evaluation, not tuned on clips).

    The wider mini and micro3g run Loihi's chip stage 40 epochs over 384 crops: their float SNN (= chip) on
    training-photo clips (24 x 25 frames, seeds 9191 and 5151; AUC / the float ANN's), mini 0.929 / 0.964 with 10
    over 192, 0.973 / 0.980 with 40, 0.982 / 1.010 with 40 over 384 (0.867 and 0.946 with 0 and 20 on seed 9191);
    micro3g 0.970 / 0.950 with 10 over 192, 0.993 / 0.990 with 40 over 384: a wider net's surrogate fits its
    reset-to-zero timing more slowly (9 minutes on 2 cores). micro, on the same clips, keeps 10 over 192:
    1.033 / 1.009 there, 1.017 / 1.003 with 40 over 384."""

    tn_weights: str = "bits"
    tn_readout_weights: str | None = None
    qat_epochs: int = QATOptions.epochs
    qat_lr: float = QATOptions.lr
    chip_epochs: dict[str, int] = field(default_factory=lambda: dict(CHIP_EPOCHS))   # per target (stage 3)
    chip_samples: int = CHIP_SAMPLES


WIDE_CHIP_STAGE = {"chip_epochs": CHIP_EPOCHS | {"loihi": 40}, "chip_samples": 384}
RECIPES = {"micro3": Recipe("trinary", "bits", qat_epochs=10, qat_lr=1e-3),
           "micro3g": Recipe("trinary", "bits", qat_epochs=10, qat_lr=1e-3, **WIDE_CHIP_STAGE),
           "mini": Recipe(**WIDE_CHIP_STAGE)}


def native_siamfc_config(config: str) -> SiamConfig:
    """The config's TrueNorth-native shape (grouped convs), which every target in TARGETS maps natively."""
    return native_config(CONFIGS[config], "truenorth")


def qat_net(model: SiamFC, target: str, timesteps: int, weights: str | None = None,
            readout_weights: str | None = None) -> QATNet:
    """The backbone of `model` (pixels / 255 in, as the rate coder delivers them) as a QATNet for `target`
    with its weight modes (None: the target's default; the read-out's: as the rest)."""
    size = model.config.search_size
    deploy = deploy_for(load_target(target), weights, readout_weights)
    return from_module(pixel_units(model), (3, size, size), deploy, timesteps)


def qat(model: SiamFC, target: str, opts: QATOptions, weights: str | None = None,
        log: Callable[[str], None] = print, readout_weights: str | None = None) -> QATNet:
    """Quantisation-aware fine-tune of `model`'s backbone for `target` (module docstring, stage 2)."""
    torch.manual_seed(opts.seed)
    net = qat_net(model, target, opts.timesteps, weights, readout_weights)
    net.init_lambdas(torch.from_numpy(calibration_inputs(model, 48, opts.seed)), opts.percentile)
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    steps = opts.pairs_per_epoch // opts.batch
    total = opts.epochs * steps
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    for epoch in range(opts.epochs):
        start, chip = time.perf_counter(), epoch >= opts.epochs - opts.chip_epochs
        clips = benchmark("train", opts.clips_per_epoch, opts.frames_per_clip, seed=opts.seed * 1000 + 500 + epoch)
        rng = np.random.default_rng([opts.seed, 500 + epoch])
        def loss_of(z: torch.Tensor, x: torch.Tensor, y: torch.Tensor, chip: bool = chip) -> torch.Tensor:
            return balanced_loss(model.head(net(z.double() / 255, chip), net(x.double() / 255, chip)), y.double())

        loss = pair_epoch(clips, rng, model.config, opts.batch, steps, loss_of, optim, sched)
        log(f"qat {target} epoch {epoch + 1}/{opts.epochs}{' (chip)' if chip else ''}: loss {loss:.4f}, "
            f"{time.perf_counter() - start:.0f} s")
    return net.eval()


def chip_finetune(net: QATNet, model: SiamFC, target: str, opts: QATOptions, epochs: int,
                  samples: int = CHIP_SAMPLES) -> Graph:
    """The QAT backbone's Graph after `epochs` of chip-in-the-loop fine-tuning (stage 3): the compiled program's
    surrogate trains the weights of its spiking layers so that the conv5 read-out, read over the window the
    tracker reads (READOUT: ticks tau0 .. timesteps, behind by the mapping's lag), matches the quantised ANN's
    conv5 on calibration crops of training clips. The read-out and the biases stay as trained, so the Graph is
    the QAT Graph with conv1-4's integer weights replaced."""
    graph = to_graph(net)
    compiled = compile_graph(graph, load_target(target), CompileOptions(timesteps=opts.timesteps,
                                                                        weights=net.deploy.compile_mode))
    readouts = [layer.name for layer in compiled.qnet.network.layers if isinstance(layer.neuron, Readout)]
    lag = max(mapping_lags(compiled.qnet.network.graph, compiled.program.netlist, readouts).values(), default=0)
    window = (READOUT["tau0"] + lag, READOUT["timesteps"] + lag)
    x = calibration_inputs(model, samples, opts.seed + 11)
    with torch.no_grad():
        teacher = net(torch.from_numpy(x).double()).reshape(samples, -1).numpy()
    surrogate = Surrogate(compiled.qnet, net.deploy)
    finetune(surrogate, x, teacher, window[1], training_info(graph)["readout_unit"], opts.timesteps, epochs=epochs,
             batch_size=16, seed=opts.seed, window=window, classes=False, spiking_weights_only=True)
    tuned = surrogate.to_graph().node_map
    keep = {p.node for projs, ro in zip(surrogate.projs, surrogate.readout) if not ro for p in projs}
    return Graph(tuple(tuned[n.name] if n.name in keep else n for n in graph.nodes), graph.edges, graph.metadata)


def qat_tracker(net: QATNet, model: SiamFC, **overrides) -> Tracker:
    """Tracker scoring with the quantised ANN (QCFS at T levels, the target's weights): the QAT stage's row."""

    @torch.no_grad()
    def embed(z: np.ndarray) -> torch.Tensor:
        return net(torch.from_numpy(z).double() / 255)

    @torch.no_grad()
    def score(kz: torch.Tensor, x: np.ndarray) -> np.ndarray:
        return model.head(kz, net(torch.from_numpy(x).double() / 255))[:, 0].numpy()

    return Tracker(embed, score, TrackerConfig.from_model(model.config, **overrides))


def load_qat(model: SiamFC, target: str, timesteps: int, path: Path, weights: str | None = None,
             readout_weights: str | None = None) -> QATNet:
    net = qat_net(model, target, timesteps, weights, readout_weights)
    net.load_state_dict(_load_stage(path)["state"])
    return net.eval()


def load_float(config: str, path: Path) -> SiamFC:
    model = SiamFC(native_siamfc_config(config))
    model.load_state_dict(_load_stage(path)["state"])
    return model.eval()


def stage_record(path: Path) -> dict:
    """What a stage file records: config or target, weight mode, training options."""
    return json.loads(_load_stage(path)["record"])


STAGE_FORMAT = "neurocomp.train_siamsnn"
STAGE_KIND = torch_kind("train_siamsnn stage file", STAGE_FORMAT)


def _not_our_json(path: Path) -> str | None:
    try:
        return None if json.loads(path.read_text()).get("format") == STAGE_FORMAT else "no train_siamsnn format"
    except (ValueError, OSError, AttributeError):
        return "not a train_siamsnn record"


RECORD_KIND = Kind("train_siamsnn record", False, _not_our_json)


def _load_stage(path: Path) -> dict:
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or data.get("format") != STAGE_FORMAT:
        raise UserError(f"{path}: not a train_siamsnn stage file")
    return data


def _save_state(path: Path, state: dict, record: dict, seconds: float) -> None:
    """The stage file (state_dict and record, byte-identical for the same training) and beside it a JSON copy
    of the record with the training time; both paths pass the policy first, so a user's file is never touched."""
    check(path, STAGE_KIND)
    check(path.with_suffix(".json"), RECORD_KIND)
    text = json.dumps(record, sort_keys=True)
    save_torch({"format": STAGE_FORMAT, "state": state, "record": text}, path, STAGE_KIND)
    human = {"format": STAGE_FORMAT, **record, "train_seconds": round(seconds, 1)}
    write_file(path.with_suffix(".json"), RECORD_KIND, lambda tmp: tmp.write_text(json.dumps(human, indent=2) + "\n"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="micro")
    ap.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    ap.add_argument("--timesteps", type=int, default=QATOptions.timesteps)
    ap.add_argument("--qat-epochs", type=int, help=f"QAT epochs (default per config, else {QATOptions.epochs})")
    ap.add_argument("--qat-lr", type=float, help=f"QAT learning rate (default per config, else {QATOptions.lr})")
    ap.add_argument("--chip-epochs", type=int, help=f"chip-in-the-loop epochs (default per config and target, else "
                                                   f"{CHIP_EPOCHS})")
    ap.add_argument("--tn-weights", help=f"TrueNorth weight mode of the spiking layers (default per config, else "
                                         f"{Recipe.tn_weights})")
    ap.add_argument("--tn-readout-weights", help="TrueNorth weight mode of the read-out (default per config, else "
                                                 "as --tn-weights)")
    ap.add_argument("--schedule", choices=SCHEDULES, default="parallel", help="search scales of the SiamSNN graphs")
    ap.add_argument("--two-status", action="store_true",
                    help="also the two-status spiking score layer (its own conv5 and correlation cores: ~60 %% more "
                         "TrueNorth cores; the tracker reads the score potential)")
    ap.add_argument("--seed", type=int, default=0, help="training seed of every stage (0: the committed models)")
    ap.add_argument("--out-dir", type=Path, default=Path("build/models"))
    args = ap.parse_args()
    recipe = RECIPES.get(args.config, Recipe())
    epochs = recipe.qat_epochs if args.qat_epochs is None else args.qat_epochs
    lr = recipe.qat_lr if args.qat_lr is None else args.qat_lr
    if epochs < 1 or not lr > 0:
        ap.error("--qat-epochs must be at least 1 and --qat-lr positive")
    tn_weights, tn_readout = args.tn_weights or recipe.tn_weights, args.tn_readout_weights or recipe.tn_readout_weights
    torch.set_num_threads(2)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    float_path = out / f"siamfc_{args.config}_native.pt"
    if float_path.is_file():
        model = load_float(args.config, float_path)
        print(f"float stage: {float_path} (trained before)")
    else:
        start, opts = time.perf_counter(), TrainOptions(seed=args.seed)
        model = train(native_siamfc_config(args.config), opts, log=lambda line: print(line, flush=True))
        _save_state(float_path, model.state_dict(), {"config": model.config.to_json(), "train": asdict(opts)},
                    time.perf_counter() - start)
    qopts = QATOptions(timesteps=args.timesteps, epochs=epochs, lr=lr, seed=args.seed)
    for target in args.targets:
        weights, readout = (tn_weights, tn_readout) if target == "truenorth" else (None, None)
        qat_path = out / f"siamsnn_{args.config}_qat_{target}.pt"
        if qat_path.is_file():
            net = load_qat(model, target, qopts.timesteps, qat_path, weights, readout)
            print(f"qat stage, {target}: {qat_path} (trained before)")
        else:
            start = time.perf_counter()
            net = qat(model, target, qopts, weights, log=lambda line: print(line, flush=True), readout_weights=readout)
            _save_state(qat_path, net.state_dict(), {"target": target, "weights": net.deploy.mode,
                                                     "readout_weights": net.deploy.layer_mode(readout=True),
                                                     "qat": asdict(qopts)}, time.perf_counter() - start)
        sopts = SiamSNNOptions(reset=net.deploy.reset, schedule=args.schedule, spiking_score=args.two_status, **READOUT)
        graph_path = out / f"siamsnn_{args.config}_{target}.pt"
        epochs = recipe.chip_epochs[target] if args.chip_epochs is None else args.chip_epochs
        backbone = chip_finetune(net, model, target, qopts, epochs, recipe.chip_samples) if epochs else to_graph(net)
        save_graph(siamsnn_graph(backbone, model.config, sopts), graph_path)
        print(f"wrote {graph_path}", flush=True)


if __name__ == "__main__":
    main()
