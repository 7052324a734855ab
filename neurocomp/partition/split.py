"""Split a layer into core-sized spans of its neurons, with the predicate the target's core builder supplies."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from neurocomp.errors import ResourceError
from neurocomp.ir.graph import Affine, Conv2d
from neurocomp.ir.layers import Layer

if TYPE_CHECKING:   # partition.period imports neuron_order from here
    from neurocomp.partition.period import Run

Fits = Callable[[int, int], tuple[bool, str, float, float]]
Hint = Callable[[str, float, float], str]  # (resource, used, allowed) -> how to make one neuron fit
Emit = Callable[[int, int], None]
Reach = Callable[[int], int]   # start -> the last hi that fits(start, hi) may accept
# (cycle, run, steps, times): the spans of `cycle` recur `times` more times, each `steps` x run.step positions on
Repeat = Callable[[list[tuple[int, int]], "Run", int, int], None]


def cat(parts: list[np.ndarray], dtype: type = np.int64) -> np.ndarray:
    """Concatenate into one integer array (one copy, no intermediate)."""
    return np.concatenate(parts, dtype=dtype) if parts else np.zeros(0, dtype)


def compact(values: np.ndarray, dtype: type = np.int32) -> np.ndarray:
    """Integers as `dtype` where they all fit, else unchanged: synapse tables are the largest arrays a compile
    holds (ids in int32 halve them). A value that does not fit keeps its width, so a check still sees it."""
    info = np.iinfo(dtype)
    fits = values.size == 0 or (int(values.min()) >= info.min and int(values.max()) <= info.max)
    return values.astype(dtype) if fits else values


def neuron_order(layer: Layer, band: int = 1, by_channel: bool = True) -> np.ndarray:
    """Group-major, then position-major order for (C, H, W) layers: a contiguous chunk is a spatial tile
    of one conv group's channels, so a core reads one group's inputs over one receptive field (a chunk
    across groups would read every group's inputs, and each input would reach more cores). Positions run
    in bands of `band` rows, column by column within a band, so a chunk of k positions is a band x k/band
    tile (band 1: raster rows): squarer tiles share more of their receptive fields. `by_channel`: conv_groups'."""
    if len(layer.shape) != 3:
        return np.arange(layer.size)
    c, h, w = layer.shape
    g = conv_groups(layer, by_channel)
    rows = -(-h // band) * band
    grid = np.full((rows, w), -1)
    grid[:h] = np.arange(h * w).reshape(h, w)
    positions = grid.reshape(rows // band, band, w).transpose(0, 2, 1).ravel()
    positions = positions[positions >= 0]
    return np.arange(layer.size).reshape(g, c // g, h * w)[:, :, positions].transpose(0, 2, 1).ravel()


def conv_groups(layer: Layer, by_channel: bool = True) -> int:
    """The groups of the Conv2d every projection of the layer starts with (1 unless all agree). `by_channel` False:
    a depthwise conv (one channel per group, as a converted average pool) counts as one group, so it is tiled
    position-major over all its channels: a tile then covers a small region, and feeds only the consumer cores
    that read that region (Loihi counts each core's destination cores); channel by channel, every tile would feed
    every consumer core of a conv that reads all channels."""
    groups = {next((getattr(op, "groups", 1) for op in p.chain if isinstance(op, (Conv2d, Affine))), 1)
              for p in layer.projections}
    g = groups.pop() if len(groups) == 1 else 1
    if not by_channel and g == layer.shape[0]:
        return 1
    return g if layer.shape[0] % g == 0 else 1


def split(layer: Layer, fits: Fits, hint: Hint | None = None, emit: Emit | None = None,
          stop: int | None = None, runs: Sequence[Sequence[Run]] = (), repeat: Repeat | None = None,
          reach: Reach | None = None) -> tuple[list[tuple[int, int]], tuple[str, float, float]]:
    """Greedy contiguous spans [lo, hi) of neuron_order(layer), each as long as `fits` allows
    (galloping + bisection; `fits` is monotone in hi). A neuron that fits no core is an error
    with the target's suggestion (`hint`). `emit(lo, hi)` gets each span as soon as it is final,
    while the rows `fits` read are still built (partition.rows.Windows). Also returns the binding
    resource: the one closest to its limit over the layer's cores. `stop`: no span starts at or
    after it (a prefix of the layer, to compare ways of splitting it).

    `runs` (partition.period: families of runs, each family in order) are where `fits` answers the same for a
    span moved by whole steps: once a core starts at the same offset within a run as an earlier one, the cores
    between them recur as far as the run allows, with no search. They are emitted one by one, or handed to
    `repeat` whole.

    `reach(start)`: a cheap bound from one of fits' limits (a core's neurons, copies included): fits(start, hi) is
    false for every hi beyond it, so no span is probed there; after a core that filled its reach the next core's
    reach is probed first, and a span that fits up to it is final in that one probe (a layer whose neurons' copies
    vary, which no cycle repeats, then costs about one probe per core, not five)."""
    spans: list[tuple[int, int]] = []
    best = ("neurons", 0.0, 1.0)
    start, n = 0, layer.size
    end = n if stop is None else min(n, stop)
    cycles = [_Cycles(family) for family in runs]
    filled = reach is not None   # the last core filled its reach: probe the next one's reach first
    while start < end:
        for family in cycles:
            found = family.find(start, len(spans)) if start < end else None
            if found is not None:
                start = _recur(spans, *found, end, emit, repeat) or start
        if start >= end:
            break
        seen: dict[int, tuple[bool, str, float, float]] = {}

        def ok(hi: int, start: int = start) -> bool:
            seen[hi] = fits(start, hi)
            return seen[hi][0]

        top = n if reach is None else min(n, max(reach(start), start + 1))
        last = spans[-1][1] - spans[-1][0] if spans else 1
        lo, hi = _bracket(start, top, top - start if filled else last, ok)
        if lo is None:
            _, resource, used, allowed = seen[start + 1]
            raise ResourceError(f"layer {layer.name}, one neuron", resource, used, allowed,
                                hint=hint(resource, used, allowed) if hint else
                                "a single neuron needs more than one core offers: reduce its fan-in (smaller kernel, groups)")
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
        _, resource, used, allowed = seen[lo]
        if used / allowed > best[1] / best[2]:
            best = (resource, used, allowed)
        if emit is not None:
            emit(start, lo)
        spans.append((start, lo))
        start, filled = lo, reach is not None and lo == top
    return spans, best


class _Cycles:
    """Where each run's cores have started, by offset within a step: a core starting at an offset seen before in
    the same run may close a cycle with any of those starts (the nearest first)."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.runs, self.at, self.seen = runs, 0, {}

    def find(self, start: int, count: int) -> tuple[Run, list[tuple[int, int]]] | None:
        """(run, the earlier (span index, start) at this offset, nearest first) where a core starting at `start` may
        close a cycle; records the start."""
        while self.at < len(self.runs) and self.runs[self.at].hi <= start:
            self.at, self.seen = self.at + 1, {}
        if self.at == len(self.runs) or start < self.runs[self.at].lo:
            return None
        run = self.runs[self.at]
        earlier = self.seen.setdefault((start - run.lo) % run.step, [])
        found = (run, earlier[:-CANDIDATES - 1:-1]) if earlier else None
        earlier.append((count, start))
        return found


# Earlier starts a cycle is tried from: a neuron's copies may repeat only every few of the run's steps.
CANDIDATES = 8


def _recur(spans: list[tuple[int, int]], run: Run, earlier: list[tuple[int, int]], end: int, emit: Emit | None,
           repeat: Repeat | None) -> int | None:
    """Repeat spans[first:] (a cycle from an earlier start to the last span's end) while every row each repeated
    span and the probe that ended it read stays in the run, with the same copies; the new start, or None when no
    earlier start repeats even once."""
    start = spans[-1][1]
    for first, begin in earlier:
        shift = start - begin
        times = min((run.hi - 1 - start) // shift, (end - 1 - spans[-1][0]) // shift)
        if times >= 1 and run.copies is not None:
            times = _periodic(run.copies, begin, shift, times)
        if times >= 1:
            break
    else:
        return None
    count = len(spans)
    cycle = spans[first:]
    moved = (np.array(cycle, dtype=np.int64)[None] + shift * np.arange(1, times + 1)[:, None, None]).reshape(-1, 2)
    spans.extend(zip(moved[:, 0].tolist(), moved[:, 1].tolist()))
    if repeat is not None:
        repeat(cycle, run, shift // run.step, times)
    elif emit is not None:
        for lo, hi in spans[count:]:
            emit(lo, hi)
    return spans[-1][1]


def _periodic(copies: np.ndarray, begin: int, shift: int, times: int) -> int:
    """How many of `times` repetitions of a cycle keep every row's copies: k of them need copies[i] ==
    copies[i + shift] for i from begin through begin + k x shift. Checked over 1, 2, 4, .. repetitions, so a
    cycle that fails costs one cycle's comparison, not the run's."""
    done, more = 0, 1
    while done < times:
        upto = min(times, done + more)
        lo, hi = begin + done * shift + (done > 0), begin + upto * shift + 1
        same = copies[lo + shift:hi + shift] == copies[lo:hi]
        if not same.all():
            return (lo - begin + int(np.argmin(same)) - 1) // shift
        done, more = upto, 2 * more
    return times


def _bracket(start: int, n: int, guess: int, ok: Callable[[int], bool]) -> tuple[int | None, int]:
    """lo < hi with ok(lo) true and hi = n + 1 or ok(hi) false (ok is false beyond n: the layer's end, or split's
    `reach`), found by galloping from start + guess (the previous core's length: a layer's cores are mostly alike),
    up where that span fits and down where it does not, so a core as long as the last or a few neurons shorter
    settles in two or three probes. lo is None when not even one neuron fits (ok(start + 1) false)."""
    at = min(start + max(guess, 1), n)
    if ok(at):
        lo, step = at, 1
        while lo + step <= n and ok(lo + step):
            lo, step = lo + step, step * 2
        return lo, min(lo + step, n + 1)
    hi, step = at, 1
    while hi > start + 1:
        down = max(at - step, start + 1)
        if ok(down):
            return down, hi
        hi, step = down, step * 2
    return None, hi
