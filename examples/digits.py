"""Digits end to end: train an ANN, convert it to an SNN, compile for TrueNorth and Loihi, emulate.

    python examples/digits.py [--timesteps 32] [--out build/digits]

Writes the ANN (`ann.pt2`, torch.export), its calibration set (`calib.npz`) and the
converted SNN (`snn.pt`), which `neurocomp convert` and `neurocomp compile` reproduce
from the command line; prints the accuracy of each stage on the 360 test digits.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from neurocomp.convert import conversion_info
from neurocomp.frontend import save_graph
from neurocomp.models import digits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timesteps", type=int, default=digits.TIMESTEPS)
    ap.add_argument("--out", type=Path, default=Path("build/digits"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    x, y, xt, yt = digits.dataset()
    t0 = time.perf_counter()
    net = digits.train(x, y)
    print(f"trained the ANN in {time.perf_counter() - t0:.1f} s: test accuracy {digits.accuracy(net, xt, yt):.3f}")
    torch.export.save(torch.export.export(net, (torch.from_numpy(x[:1]),)), args.out / "ann.pt2")
    np.savez(args.out / "calib.npz", input=x.astype(np.float64))
    snn = digits.to_snn(net, x, args.timesteps)
    save_graph(snn, args.out / "snn.pt")
    for name, row in conversion_info(snn)["layers"].items():
        print(f"  {name}: lambda {max(row['lambda']):.3g}, RMSE vs ANN {row['rmse']:.4f} ({row['kind']})")
    acc = digits.accuracies(snn, xt.astype(np.float64), yt, args.timesteps)
    print(f"T = {args.timesteps}: float SNN {acc['snn_float']:.3f}, TrueNorth emulated {acc['truenorth']:.3f}, "
          f"Loihi emulated {acc['loihi']:.3f}")
    print(f"same from the command line: neurocomp convert {args.out / 'ann.pt2'} --calibration {args.out / 'calib.npz'} "
          f"--reset zero --timesteps {args.timesteps} -o {args.out / 'snn.pt'}")


if __name__ == "__main__":
    main()
