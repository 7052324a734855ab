"""Train the digits CNN for a target: the issue's CNN in TrueNorth's native shape, QAT, chip-in-the-loop.

    python -m neurocomp.models.train_digits_cnn --out-dir models [--targets truenorth loihi] [--seed 0]

The recipe benchmarks/train_digits.py measures (goal (b), its settings chosen on a validation split of the
training digits), as a deterministic script whose output is committed:
1. float: conv 1->16 3x3 + BatchNorm, conv 16->16 3x3 stride 2 in the groups TrueNorth's cores take (fan-in 72:
   no spiking partial sums), 2x2 average pool, linear 64->10, trained in plain torch (AdamW, cosine decay,
   affine jitter) on scikit-learn's digits, 1,437 of them; the other 360 (a stratified split, seed 0) are never
   trained or tuned on;
2. per target: `neurocomp.train` QAT from those weights at T ticks (QCFS, the target's default weight set, half
   of each batch jittered, the last epochs on the chip's own integer spike trains), then, wherever the program is
   not exact, chip-in-the-loop epochs through the compiled program's surrogate;
3. the integer SNN Graph -> digits_cnn_<target>.pt, and digits_cnn_<target>.json with the settings and the
   accuracy of each stage on the 360 test digits (float ANN, QAT ANN, emulated chip).

Deterministic: fixed seeds and one torch thread, so the same bytes come out every time.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from neurocomp.arrays import one_torch_thread
from neurocomp.backends import emulator
from neurocomp.compiler import CompileOptions, Compiled, compile_graph
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import Graph
from neurocomp.models.native import native_convs
from neurocomp.safewrite import json_kind, write_file
from neurocomp.target import load_target
from neurocomp.train import QATNet, Surrogate, TrainOptions, deploy_for, finetune, fit, from_module, predict, to_graph, training_info
from neurocomp.train.augment import jitter
from neurocomp.train.surrogate import JUDGE_JITTER

USER_EPOCHS = 150
# Chosen on the validation split (seeds 0-2): 100 QAT epochs at 3e-3 over 20 (native CNN on TrueNorth at T 16,
# chip - ANN: -2.2..-0.3 -> -0.8..-0.3 pt; 10 at 1e-3, 60, 200, lr 1e-3, 6e-3 and 1e-2 tried too), then, where the
# compiled program is not exact (spiking partial sums), 3 chip-in-the-loop epochs (brought CNN on TrueNorth at
# T 16: -2.5..-0.8 -> -0.8..-0.3 pt; 10 tried). The last 50 QAT epochs go through the target's neuron model
# (Loihi's reset to zero; TrueNorth's is QCFS itself), not 3: Loihi at T 16, worst seed, brought -0.6 -> +0.0
# and native -0.8 -> -0.3 pt (20 tried). Distillation from the user's model was tried twice and gave nothing there
# (the second time, weight 0.5 at temperature 2, seeds 0-5: every row's mean chip - ANN fell, by 0.4-0.7 pt).
# The user trains with affine jitter (train/augment.py: +-10 degrees, +-10 % scale, +-1 pixel) instead of shifts
# alone, and QAT jitters half of each batch the same way (validation, seeds 0-5: the user's ANN reaches 99 % on
# 4 of 6 seeds against 2 of 6 with shifts; without jitter in QAT the native chip lost up to 1.4 pt). On TrueNorth
# the brought CNN is trained and compiled in the "whole" weight mode (conv2's fan-in 144 stays on one core,
# 4 levels per neuron, no spiking partial sums: chip - ANN -0.6..+0.6 pt at T 16 and 32, where the partial sums
# lost up to 1.7 pt after 3 chip-in-the-loop epochs, 2.2 after 10). Jittering half of each chip-in-the-loop batch
# (teacher: the QAT ANN's logits of the moved digits) was tried on validation, seeds 0-11, and not kept: TrueNorth
# worst seed / mean chip - ANN, native T 16 -0.6 / +0.02 (unchanged), brought T 16 -0.6 / -0.10 -> -0.8 / -0.22;
# on Loihi the judge still kept the compiled program in 35 of 36 runs.
QAT_FT_EPOCHS, QAT_FT_LR, QAT_CHIP_EPOCHS, CHIP_FT_EPOCHS, QAT_JITTER = 100, 3e-3, 50, 3, 0.5
# Those 50 epochs run the chip's own spike trains forward (TrainOptions.chip_forward "spikes", tandem learning), not
# the rate model: validation, seeds 0-5, T 16, chip + fine-tune - ANN worst / mean over seeds: Loihi brought
# -0.83 / -0.14 -> -0.28 / +0.00 and native +0.00 / +0.23 -> +0.00 / +0.46 pt; TrueNorth brought -0.56 / -0.28 ->
# -0.56 / -0.09 and native -1.39 / -0.23 -> -0.28 / +0.14 pt; T 32, seeds 0-2, brought: Loihi +0.00 / +0.00 ->
# +0.00 / +0.19, TrueNorth -0.28 / +0.09 -> -0.56 / -0.19 pt (within its 1.0 pt; one digit).
QAT_CHIP_FORWARD = "spikes"
# The chip-in-the-loop epochs run only where the program is not exact (`finetunes`), now that the QAT epochs train
# the chip's spike timing. With rate-model QAT they had run on TrueNorth's exact programs too (validation, seeds 0-5,
# chip - ANN mean over seeds, brought -0.32 -> -0.09, native +0.05 -> +0.19 pt; Loihi brought +0.14 -> -0.46, native
# +0.56 -> +0.00 pt); after spike-train QAT, TrueNorth without them, worst / mean: brought T 16 -0.56 / -0.09 ->
# -0.56 / -0.14, native -0.28 / +0.14 -> -0.28 / +0.23, brought T 32 (seeds 0-2) -0.56 / -0.19 -> -0.28 / -0.09 pt.
TIMESTEPS = 16
TARGETS = ("truenorth", "loihi")
RECORD_KIND = json_kind("neurocomp digits CNN training record", "neurocomp.digits_cnn")

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@functools.cache
def data(validate: bool = False) -> Data:
    """(x_train, y_train, x_test, y_test): a stratified split with a fixed seed, 360 test digits never trained or
    tuned on. `validate`: 360 digits of the training part in place of the test set, where every setting here
    was chosen."""
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.images[:, None] / 16.0, d.target, test_size=360, stratify=d.target,
                                          random_state=0)
    if validate:
        xtr, xte, ytr, yte = train_test_split(xtr, ytr, test_size=360, stratify=ytr, random_state=0)
    return xtr, ytr, xte, yte


def issue_cnn() -> nn.Module:
    """The issue's digits CNN as a user writes it: conv2 dense (fan-in 144)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def native_cnn() -> nn.Module:
    """The issue's CNN in TrueNorth's native shape (models/native.py: conv2 in 2 groups, fan-in 72, so no
    spiking partial sums); native on Loihi too."""
    (_, c2), (_, g2) = native_convs(1, (16, 16), (3, 3), (1, 1), load_target("truenorth"))
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, c2, 3, stride=2, padding=1, groups=g2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(c2 * 4, 10))


@functools.cache
def users_cnn(seed: int, validate: bool, build: Callable[[], nn.Module] = issue_cnn) -> nn.Module:
    """A CNN trained the ordinary way in plain torch (BatchNorm in train mode, AdamW, cosine decay, affine jitter),
    returned in eval mode. 150 epochs, lr 1e-2, weight decay 5e-2, batch 32: the best of the settings tried on the
    validation split for the issue's CNN (99.2 % mean over seeds 0-5 there, trained on 1,077 digits)."""
    xtr, ytr, _, _ = data(validate)
    torch.manual_seed(seed)
    model, gen = build().double(), torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=5e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, USER_EPOCHS)
    for _ in range(USER_EPOCHS):
        for idx in torch.randperm(len(x), generator=gen).split(32):
            opt.zero_grad()
            F.cross_entropy(model(jitter(x[idx], gen)), y[idx]).backward()
            opt.step()
        schedule.step()
    return model.eval()


def qat_for_target(model: nn.Module, target_name: str, t: int, seed: int, x: np.ndarray, y: np.ndarray,
                   mode: str | None = None) -> QATNet:
    """A trained CNN through `from_module` and a short QAT fine-tune from its weights (weight mode `mode`, None:
    the target's default)."""
    net = from_module(copy.deepcopy(model), (1, 8, 8), deploy_for(load_target(target_name), mode), t)
    fit(net, x, y, TrainOptions(timesteps=t, float_epochs=0, epochs=QAT_FT_EPOCHS, lr=QAT_FT_LR, seed=seed,
                                chip_epochs=QAT_CHIP_EPOCHS, chip_forward=QAT_CHIP_FORWARD, jitter=QAT_JITTER))
    return net


def finetunes(exact: bool) -> bool:
    """Whether the chip-in-the-loop epochs run: wherever the program is not exact (spiking partial sums)."""
    return not exact


def chip_tuned(net: QATNet, graph: Graph, compiled: Compiled, t: int, seed: int, epochs: int,
               x: np.ndarray, y: np.ndarray) -> tuple[Graph, Compiled]:
    """The Graph and program after `epochs` of chip-in-the-loop fine-tuning through the surrogate of `compiled`."""
    surrogate = Surrogate(compiled.qnet, net.deploy)
    finetune(surrogate, x, predict(net, x), t + compiled.report["latency_ticks"], training_info(graph)["readout_unit"],
             t, epochs=epochs, seed=seed, labels=y, judge_jitter=JUDGE_JITTER)
    tuned = surrogate.to_graph()
    return tuned, compile_graph(tuned, net.deploy.target, CompileOptions(timesteps=t, seed=seed))


def chip_logits(compiled: Compiled, t: int, x: np.ndarray) -> np.ndarray:
    """The emulated chip's logits: the read-out's last potential after T + latency ticks."""
    program = compiled.program
    ticks = t + compiled.report["latency_ticks"]
    return emulator.run(program, program.target, {"input": x}, ticks).potentials["readout"][:, -1]


def chip_accuracy(compiled: Compiled, t: int, x: np.ndarray, y: np.ndarray) -> float:
    return float((chip_logits(compiled, t, x).argmax(-1) == y).mean())


def train_for(target_name: str, seed: int = 0, t: int = TIMESTEPS) -> tuple[Graph, dict]:
    """The native CNN's SNN Graph for one target and its record (settings, accuracy per stage on the test digits),
    on one torch thread: the same bytes every time (two threads sum in another order)."""
    with one_torch_thread():
        return _trained(target_name, seed, t)


def _trained(target_name: str, seed: int, t: int) -> tuple[Graph, dict]:
    xtr, ytr, xte, yte = data()
    model = users_cnn(seed, False, native_cnn)
    with torch.no_grad():
        ann = float((model(torch.from_numpy(xte)).numpy().argmax(-1) == yte).mean())
    net = qat_for_target(model, target_name, t, seed, xtr, ytr)
    graph = to_graph(net)
    compiled = compile_graph(graph, net.deploy.target, CompileOptions(timesteps=t, seed=seed))
    exact = all(q.exact for q in compiled.qnet.layers)
    if finetunes(exact):
        graph, compiled = chip_tuned(net, graph, compiled, t, seed, CHIP_FT_EPOCHS, xtr, ytr)
    record = {"format": "neurocomp.digits_cnn", "target": target_name, "seed": seed, "timesteps": t,
              "weights": net.deploy.mode, "user_epochs": USER_EPOCHS, "qat_epochs": QAT_FT_EPOCHS,
              "qat_chip_epochs": QAT_CHIP_EPOCHS, "qat_chip_forward": QAT_CHIP_FORWARD,
              "chip_epochs": CHIP_FT_EPOCHS if finetunes(exact) else 0,
              "exact": all(q.exact for q in compiled.qnet.layers), "cores": compiled.program.netlist.n_cores,
              "test_digits": len(yte), "accuracy": {"float ANN": ann, "QAT ANN": float((predict(net, xte).argmax(-1) == yte).mean()),
                                                    "chip": chip_accuracy(compiled, t, xte, yte)}}
    return graph, record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    ap.add_argument("--seed", type=int, default=0, help="training seed (0: the committed models)")
    ap.add_argument("--out-dir", type=Path, default=Path("build/models"))
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for target in args.targets:
        start = time.perf_counter()
        graph, record = train_for(target, args.seed)
        out = args.out_dir / f"digits_cnn_{target}.pt"
        save_graph(graph, out)
        text = json.dumps(record, indent=1, sort_keys=True) + "\n"
        write_file(out.with_suffix(".json"), RECORD_KIND, lambda tmp: tmp.write_text(text), [])
        acc = record["accuracy"]
        print(f"{target}: ANN {acc['float ANN']:.4f}, QAT ANN {acc['QAT ANN']:.4f}, chip {acc['chip']:.4f} "
              f"({record['cores']} cores, exact {record['exact']}); wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
