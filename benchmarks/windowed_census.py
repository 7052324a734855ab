"""TrueNorth cores of a network too large to compile here, estimated layer by layer from window compiles.

The exact census (neurocomp.partition.count_cores, `neurocomp check --census`) needs the compile's front end and
then cuts every layer: the paper-size SiamSNN's fan-in split makes about 85 M partial-sum neurons in 1,401 layers
on TrueNorth (a minute and 7.7 GB of front end here), and their census did not finish within 25 minutes. This
estimate never builds the whole network. Here every
neuron layer L is compiled (legalize, quantise, partition) in a window: L's sources as spiking
Inputs sized so that L's output is m x m, L itself, and two generations of its consumers when
their kernels fit a window of side <= 8, else one (so L's copies see consumer cores cut much as
in the whole network). L's cores (with its fan-in partial layers or read-out parts) at
m = m0, m0 + 2, m0 + 4 (m0 the smallest side the consumers accept, at least 4) fit
c(m) = a m^2 + b m + c (area, border, constant), evaluated at L's full H x W: a H W +
b (H + W) / 2 + c. A layer whose full side is <= m0 + 4 is compiled at its full size. Splitter
cores (neurons with more than 256 copies) are not counted. The estimate is checked against whole
compiles on networks that do compile (`--check`).

    python benchmarks/windowed_census.py --siamsnn micro --check
    python benchmarks/windowed_census.py --conv 3e4 --check
    python benchmarks/windowed_census.py --siamsnn full
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from neurocomp.errors import GraphError, UserError
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Conv2d, Graph, Input, Output, SumPool2d
from neurocomp.ir.layers import Network, lower
from neurocomp.partition import partition
from neurocomp.quantize import quantize
from neurocomp.target import Target, load_target

SIDES = (0, 2, 4)    # added to the smallest side every consumer in the window accepts (at least 4)
MAX_SIDE = 8        # windows start no larger than this: two consumer generations when they fit, else one


def _in_side(chain, out: int) -> int:
    """Input side a chain needs for an `out` x `out` output (convs and pools; others keep the side)."""
    side = out
    for op in reversed(chain):
        if isinstance(op, Conv2d):
            k, s, p = op.weight.shape[-1], op.stride[1], op.padding[1]
        elif isinstance(op, SumPool2d):
            k, s, p = op.kernel[1], op.stride[1], op.padding[1]
        else:
            continue
        side = (side - 1) * s + k - 2 * p
    return side


def _window(g: Graph, net: Network, name: str, side: int | None, generations: int) -> Graph:
    """Layer `name` with `generations` of consumers; its sources are spiking Inputs giving a side x side
    output (side None: their full shapes)."""
    layers = {lay.name: lay for lay in net.layers}
    keep = {name}
    for _ in range(generations):
        keep |= {lay.name for lay in net.layers if any(p.source in keep for p in lay.projections)}
    nodes, edges = {}, []
    for lname in sorted(keep, key=[lay.name for lay in net.layers].index):
        nodes[lname] = g.node(lname) if side is None else _per_channel(g.node(lname))
        for proj in layers[lname].projections:
            if proj.source not in keep:
                shape = g.shape(proj.source)
                if side is not None and lname == name:
                    shape = (shape[0], _in_side(proj.chain, side), _in_side(proj.chain, side))
                nodes[proj.source] = Input(proj.source, shape, "spikes")
            nodes.update({op.name: op for op in proj.chain})
            names = [proj.source] + [op.name for op in proj.chain] + [lname]
            edges += list(zip(names[:-1], names[1:]))
        outs = [b for a, b in g.edges if a == lname and isinstance(g.node(b), Output)]
        nodes.update({b: g.node(b) for b in outs})
        edges += [(lname, b) for b in outs]
    return Graph(tuple(nodes.values()), tuple(dict.fromkeys(edges)), g.metadata)


def _smallest_side(g: Graph, net: Network, lay) -> tuple[int, int]:
    """The smallest output side (>= 4) whose window every consumer's kernel fits, and the consumer
    generations it holds: two if that side is at most MAX_SIDE, else one."""
    for generations in (2, 1):
        for m in range(4, MAX_SIDE + 1 if generations == 2 else max(lay.shape[1:]) + 1):
            try:
                _window(g, net, lay.name, m, generations)
                return m, generations
            except GraphError:
                continue
    return max(lay.shape[1:]), 1


def _per_channel(neuron):
    """The neuron with per-position (C, H, W) parameters cut to their first position, (C, 1, 1), so they
    broadcast over any window (the census needs their ranges, not their layout)."""
    fields = {f.name: getattr(neuron, f.name) for f in dataclasses.fields(neuron)}
    cut = {k: v[:, :1, :1] for k, v in fields.items() if isinstance(v, np.ndarray) and v.ndim == 3}
    return dataclasses.replace(neuron, **cut)


def _cores(g: Graph, name: str, target: Target, weights: str) -> int:
    """Cores of layer `name` and of the layers its fan-in split made (name.*), as the compiler cuts them."""
    net = target.hooks.legalize(lower(fold_linear(g)), target.spec, weights)
    return _layer_cores(partition(quantize(net, target, weights), target), name)


def _layer_cores(netlist, name: str) -> int:
    return sum(len(lm.cores) for lm in netlist.layers if lm.name == name or lm.name.startswith(name + "."))


def estimate(graph: Graph, target: Target, weights: str, say=lambda row: None,
             only: tuple[str, ...] = ()) -> list[dict]:
    """Per layer (or the `only` ones): its estimated cores, its window counts, or why it does not map."""
    g = fold_linear(graph)
    net = lower(g)
    rows = []
    for lay in (x for x in net.layers if not only or x.name in only):
        t0 = time.perf_counter()
        row = {"layer": lay.name, "neurons": lay.size}
        try:
            m0, gens = _smallest_side(g, net, lay) if len(lay.shape) == 3 else (None, 2)
            if m0 is None or max(lay.shape[1:]) <= m0 + max(SIDES):
                row["cores"] = _cores(_window(g, net, lay.name, None, 2), lay.name, target, weights)
            else:
                sides = [m0 + d for d in SIDES]
                counts = [_cores(_window(g, net, lay.name, m, gens), lay.name, target, weights) for m in sides]
                row["generations"] = gens
                a, b, c = np.polyfit(sides, counts, 2)
                h, w = lay.shape[1:]
                row["cores"] = int(round(a * h * w + b * (h + w) / 2 + c))
                row["windows"] = dict(zip(sides, counts))
        except (UserError, GraphError) as exc:
            row["error"] = str(exc)
        row["s"] = time.perf_counter() - t0
        rows.append(row)
        say(row)
    return rows


def main() -> None:
    from compile_scaling import conv_net, siamsnn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--siamsnn", choices=["micro", "small", "full"], default="micro")
    ap.add_argument("--conv", type=float, help="the compile_scaling conv net of this many neurons instead")
    ap.add_argument("--maxpool", choices=["spiking", "avg"], default="avg")
    ap.add_argument("--pool-layers", action="store_true")
    ap.add_argument("--check", action="store_true", help="also compile the whole network and compare per layer")
    ap.add_argument("--layers", nargs="*", default=[], help="estimate only these layers (to spread a run over processes)")
    ap.add_argument("--tn-weights", choices=["levels", "bits", "trinary"], default="levels",
                    help="weight mode (levels: the fewest synaptic events; bits costs ~16 %% more cores on the micro SiamSNN)")
    args = ap.parse_args()
    target = load_target("truenorth")
    t0 = time.perf_counter()
    if args.conv:
        graph, neurons = conv_net(args.conv)
        print(f"conv net: {neurons:,} neurons")
    else:
        graph, neurons = siamsnn(args.siamsnn, "truenorth", args.maxpool, args.pool_layers, spiking_score=False)
        print(f"SiamSNN {args.siamsnn}: {neurons:,} neurons, converted in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    rows = estimate(graph, target, args.tn_weights, lambda row: print(f"  {row['layer']}: {row.get('cores', '-')} cores, {row['s']:.0f} s",
                                                     flush=True), tuple(args.layers))
    whole = {}
    if args.check:
        net = target.hooks.legalize(lower(fold_linear(graph)), target.spec, args.tn_weights)
        netlist = partition(quantize(net, target, args.tn_weights), target)
        whole = {row["layer"]: _layer_cores(netlist, row["layer"]) for row in rows}
    print(f"{'layer':16} {'neurons':>9} {'est. cores':>10} {'whole':>7}  windows {{side: cores}}")
    for row in rows:
        est = row.get("cores", "-")
        print(f"{row['layer']:16} {row['neurons']:>9,} {est:>10} {whole.get(row['layer'], ''):>7}  "
              f"{row.get('windows', '')} {row.get('generations', '')} {row.get('error', '')[:120]}")
    total = sum(r.get("cores", 0) for r in rows)
    chips = -(-total // target.spec.cores_per_chip)
    line = f"total {total:,} cores = {chips} chips (estimate, {time.perf_counter() - t0:.0f} s)"
    if whole:
        line += f"; whole compile {sum(whole.values()):,} cores"
    print(line + ("; unmapped: " + ", ".join(r["layer"] for r in rows if "error" in r) if any("error" in r for r in rows) else ""))


if __name__ == "__main__":
    main()
