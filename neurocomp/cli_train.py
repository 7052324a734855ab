"""`neurocomp train MODEL.pt2 --data D.npz --target T -o OUT.pt`: QAT for a target, optional chip-in-the-loop
fine-tune, and the integer SNN .pt that `neurocomp compile` maps exactly.

Heavy modules are imported inside `run`, so `neurocomp --help` stays fast. Everything that can be refused
(output path, target, weight mode, model, data shapes and values, a checkpoint of another run) is refused
before the first epoch. After each epoch OUT.pt.ckpt is replaced atomically; `--resume` continues from it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(sub, count, real) -> None:
    k = sub.add_parser("train", help="quantisation-aware training of a .pt2 ANN for a target; writes an SNN .pt",
                       description="Only use .pt2 files you trust: torch.export.load is not safe for hostile files.")
    k.add_argument("model", help=".pt2 written by torch.export.save (Conv2d/Linear, BatchNorm, ReLU, flatten)")
    k.add_argument("--data", required=True, help=".npz with 'input' (samples, *input_shape) in [0, 1] and 'labels'")
    k.add_argument("--target", required=True, help="truenorth, loihi, loihi2 or a spec.toml path")
    k.add_argument("-o", "--out", required=True, help="SNN .pt to write (checkpoints go to OUT.ckpt)")
    k.add_argument("--timesteps", type=count(1), default=16, help="T, the QCFS levels (16)")
    k.add_argument("--epochs", type=count(0), default=20, help="QAT epochs (20)")
    k.add_argument("--float-epochs", type=count(0), default=0, help="plain ReLU epochs before QAT (0: the model is trained)")
    k.add_argument("--lr", type=real(0.0, 10.0, open_lo=True), default=2e-3)
    k.add_argument("--batch-size", type=count(1), default=64)
    k.add_argument("--weights", help="the target's weight mode (truenorth: bits, levels, trinary, whole; loihi: levels, coarse); default its first")
    k.add_argument("--readout-weights", help="the read-out layer's weight mode (default: --weights); e.g. truenorth "
                                             "--weights trinary --readout-weights bits")
    k.add_argument("--jitter", type=real(0.0, 1.0), default=0.0,
                   help="fraction of each batch's images rotated (+-10 deg), scaled (+-10 %%) and moved (+-1 px) at random (0)")
    k.add_argument("--chip-forward", default="rate", metavar="{rate,spikes}",
                   help="the last QAT epochs' forward pass: the target's rate model of its neuron (rate), or the "
                        "chip's own integer spike trains with the rate model's gradient (spikes: slower, trains "
                        "the spikes' timing too)")
    k.add_argument("--finetune", type=count(0), default=0, help="chip-in-the-loop epochs through the surrogate (0)")
    k.add_argument("--seed", type=count(0), default=0)
    k.add_argument("--resume", action="store_true", help="continue from OUT.ckpt")
    k.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace, console) -> int:
    import torch

    from neurocomp.convert import load_exported
    from neurocomp.errors import UserError
    from neurocomp.progress import steps
    from neurocomp.convert.pipeline import input_shape_of
    from neurocomp.frontend.ptfile import SNN_KIND, save_graph
    from neurocomp.safewrite import check
    from neurocomp.target import load_target
    from neurocomp.train import data as td
    from neurocomp.train import deploy_for, exactness, fit, from_program, predict, to_graph
    from neurocomp.train.qat import TrainOptions

    model, data_path, out = Path(args.model), Path(args.data), Path(args.out)
    ckpt = out.with_name(out.name + ".ckpt")
    sources = [model, data_path]
    check(out, SNN_KIND, sources)
    check(ckpt, td.CHECKPOINT_KIND, sources)
    if args.resume and not ckpt.exists():
        raise UserError(f"--resume: no checkpoint {ckpt}")
    deploy = deploy_for(load_target(args.target), args.weights, args.readout_weights)
    opts = TrainOptions(timesteps=args.timesteps, epochs=args.epochs, float_epochs=args.float_epochs, lr=args.lr,
                        batch_size=args.batch_size, seed=args.seed, jitter=args.jitter,
                        chip_forward=args.chip_forward)
    x, y = td.load_data(data_path)
    program = load_exported(model)
    shape = input_shape_of(program)
    net = from_program(program, shape, deploy, opts.timesteps)
    x, y = td.check_data(x, y, shape, int(net.layers[-1].weight.shape[0]))
    modes = (deploy.mode,) if deploy.readout_mode is None else (deploy.mode, deploy.readout_mode)
    config = td.fingerprint(model, data_path, deploy.target.name, *modes, opts.__dict__)
    torch.manual_seed(opts.seed)
    opt = torch.optim.Adam(net.parameters(), lr=opts.lr)
    start = td.load_checkpoint(ckpt, config, net, opt) if args.resume else 0
    total = opts.float_epochs + opts.epochs
    with steps(console, "training", total - start, on_start=False) as step:

        def after_epoch(epoch: int, n: Any, o: Any) -> None:
            """A checkpoint (so --resume can continue), then the bar."""
            td.save_checkpoint(ckpt, epoch, config, n, o, sources)
            step(f"epoch {epoch} of {total}")

        fit(net, x, y, opts, start, opt, after_epoch)
    graph = to_graph(net)
    summary: dict[str, Any] = {"target": deploy.target.name, "weights": deploy.mode,
                               "readout_weights": deploy.layer_mode(readout=True), "timesteps": opts.timesteps,
                               "qat_accuracy": float((predict(net, x).argmax(1) == y).mean())}
    if args.finetune:
        graph = _finetuned(graph, net, x, y, deploy, opts, args.finetune)
    summary["exact_layers"] = exactness(graph, deploy)
    save_graph(graph, out, sources)
    summary["output"] = str(out)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        console.print(f"QAT accuracy on the training data {summary['qat_accuracy']:.3f}; layers kept exact by the "
                      f"compiler: {sum(summary['exact_layers'].values())} of {len(summary['exact_layers'])}")
        console.print(f"wrote {out}")
    return 0


def _finetuned(graph, net, x, y, deploy, opts, epochs: int):
    """The Graph after `epochs` of chip-in-the-loop fine-tuning toward the QAT model's logits and the labels."""
    from neurocomp.ir.graph import Graph
    from neurocomp.ir.layers import lower
    from neurocomp.quantize import quantize
    from neurocomp.train import Surrogate, finetune, predict, training_info
    from neurocomp.train.surrogate import JUDGE_JITTER

    qnet = quantize(lower(graph), deploy.target, deploy.compile_mode)
    surrogate = Surrogate(qnet, deploy)
    ticks = opts.timesteps + len(qnet.network.layers)
    finetune(surrogate, x, predict(net, x), ticks, training_info(graph)["readout_unit"], opts.timesteps,
             epochs=epochs, batch_size=opts.batch_size, seed=opts.seed, labels=y,
             judge_jitter=JUDGE_JITTER if opts.jitter else 0)
    tuned = surrogate.to_graph()
    return Graph(tuned.nodes, tuned.edges, graph.metadata)
