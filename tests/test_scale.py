"""Scale-out (neurocomp.scale, `eval`, `track --clips`): a local Ray of 2 workers gives the serial run's numbers and
bytes, a killed worker's chunk is retried, an interrupted run resumes from its chunk files, bad input is one line.

One local Ray (num_cpus=2) serves the whole module; the commands use it as it is (Pool leaves a running Ray alone).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.frontend.ptfile import save_graph
from neurocomp.scale import ChunkStore, Group, Pool, Work, run_chunks, run_groups
from neurocomp.target import load_target
from netlib import integer_cnn

SAMPLES, CHUNK = 45, 8


@pytest.fixture(scope="module")
def ray_two():
    import ray
    from ray import cloudpickle   # Ray's own copy of cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # this module's task functions travel by value
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> tuple[Path, Path]:
    """A compiled integer CNN (4 classes) and 45 samples with labels."""
    folder = tmp_path_factory.mktemp("eval")
    program = compile_graph(integer_cnn(), load_target("loihi"), CompileOptions(timesteps=8)).program
    program.save(folder / "cnn.loihi")
    save_graph(integer_cnn(), folder / "cnn.pt")
    rng = np.random.default_rng(3)
    np.savez(folder / "data.npz", input=rng.random((SAMPLES, 2, 6, 6)), labels=rng.integers(0, 4, SAMPLES))
    return folder / "cnn.loihi", folder / "data.npz"


def _json(argv: list[str]) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return json.loads(buf.getvalue())


def _eval(prog: Path, data: Path, out: Path, *extra: str) -> dict:
    return _json(["eval", str(prog), "--data", str(data), "--chunk", str(CHUNK), "--out", str(out), "--json", *extra])


def _watch(monkeypatch, module, name: str, key, ran: list, stop=None):
    """Replace module.name (a chunk task (opened, payload)) by one that records key(payload) in `ran` and runs
    the real task, or raises KeyboardInterrupt (an interrupted run) where key(payload) == stop."""
    real = getattr(module, name)

    def watched(opened, payload):
        if stop is not None and key(payload) == stop:
            raise KeyboardInterrupt
        ran.append(key(payload))
        return real(opened, payload)

    monkeypatch.setattr(module, name, watched)


def test_eval_on_two_ray_workers_equals_serial_and_a_direct_run(ray_two, classifier, tmp_path):
    prog, data = classifier
    serial = _eval(prog, data, tmp_path / "serial.npz")
    ray = _eval(prog, data, tmp_path / "ray.npz", "--workers", "2")
    assert (tmp_path / "serial.npz").read_bytes() == (tmp_path / "ray.npz").read_bytes()
    figures = ("accuracy", "correct", "spikes_per_sample", "chip_spikes_per_sample", "energy_per_sample_j", "chunks")
    assert {k: serial[k] for k in figures} == {k: ray[k] for k in figures}
    assert (serial["samples"], serial["chunks"], ray["workers"]) == (SAMPLES, 6, 2)
    # the same numbers as one `run` over the whole set (rate coding: no seed in the spikes)
    from neurocomp.program import Program

    z = np.load(data)
    whole = Program.load(prog).run(z["input"])
    out = np.load(tmp_path / "ray.npz")
    np.testing.assert_array_equal(out["prediction"], whole.output[:, -1].argmax(-1))
    np.testing.assert_array_equal(out["label"], z["labels"])
    np.testing.assert_array_equal(out["spikes"], sum(v.reshape(SAMPLES, -1).sum(1) for v in whole.spikes.values()))
    assert serial["correct"] == int((out["prediction"] == z["labels"]).sum())
    assert serial["chip_spikes_per_sample"] == pytest.approx(whole.summary["counts"]["spikes"] / SAMPLES)


def test_track_clips_on_two_ray_workers_equals_serial(ray_two, tmp_path):
    from test_siamsnn import _tiny_siamsnn

    save_graph(_tiny_siamsnn(), tmp_path / "tiny.pt")
    prog = tmp_path / "tiny.tn"
    assert main(["compile", str(tmp_path / "tiny.pt"), "--target", "truenorth", "-o", str(prog), "--quiet"]) == 0
    args = ["track", str(prog), "--clips", "2", "--clip", "4", "--frames", "3", "--ticks", "8", "--exemplar-ticks", "16",
            "--tau0", "2", "--json"]
    serial = _json(args + ["--out", str(tmp_path / "serial.json")])
    ray = _json(args + ["--out", str(tmp_path / "ray.json"), "--workers", "2"])
    assert (tmp_path / "serial.json").read_bytes() == (tmp_path / "ray.json").read_bytes()
    assert [c["clip"] for c in ray["per_clip"]] == [4, 5]
    assert (ray["auc"], ray["precision"], ray["chip_fps"]) == (serial["auc"], serial["precision"], serial["chip_fps"])
    assert ray["auc"] == pytest.approx(np.mean([c["auc"] for c in ray["per_clip"]]))   # OTB: clips weigh the same
    # clip 5 alone, as the single-clip track computes it
    one = _json(["track", str(prog), "--clip", "5", "--frames", "3", "--ticks", "8", "--exemplar-ticks", "16",
                 "--tau0", "2", "--json"])
    assert (one["auc"], one["boxes"]) == (ray["per_clip"][1]["auc"], ray["per_clip"][1]["boxes"])
    assert one["per_frame"]["ticks"] == ray["per_clip"][1]["ticks"] == 3 * 8 + 16 / 2


def _square(_opened: None, x: int) -> dict[str, np.ndarray]:
    return {"y": np.array([x * x])}


def _die_once(_opened: None, payload: tuple[int, str]) -> dict[str, np.ndarray]:
    """Kills its own worker process the first time it sees chunk 2 (a marker file says it did)."""
    x, marker = payload
    if x == 2 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": np.array([x * x]), "pid": np.array([os.getpid()])}


def test_a_killed_worker_is_retried_and_nothing_is_counted_twice(ray_two, tmp_path):
    marker = tmp_path / "killed"
    work = Work({}, Path)
    store = ChunkStore(tmp_path / "state", "k")
    with Pool(2) as pool:
        out = run_chunks(pool, work, _die_once, lambda skip: ((i, (i, str(marker))) for i in range(6)), 6, None, store)
    assert [int(c["y"][0]) for c in out] == [0, 1, 4, 9, 16, 25]
    killed = int(marker.read_text())
    assert killed != os.getpid() and int(out[2]["pid"][0]) != killed   # chunk 2 ran again on a fresh worker
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [f"chunk-{i:06d}.npz" for i in range(6)]


def _base(_opened: None, base: int) -> int:
    return base


def _die_once_in_group(_opened: None, base: int, payload: tuple[int, str]) -> dict[str, np.ndarray]:
    """Kills its worker the first time it sees chunk 3 (a group's lead, which prepared the group in the same
    task) and chunk 7 (a later chunk, which got the prepared value from the object store)."""
    x, folder = payload
    marker = Path(folder) / f"killed-{x}"
    if x in (3, 7) and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return {"y": np.array([base + x * x]), "pid": np.array([os.getpid()])}


def test_groups_on_two_workers_equal_serial_and_survive_killed_workers(ray_two, tmp_path):
    def groups(skip: set[int]) -> list[Group]:
        return [Group(base, [(i, (i, str(tmp_path))) for i in range(3 * g, 3 * g + 3) if i not in skip])
                for g, base in enumerate((100, 200, 300))]

    with Pool(1) as pool:
        serial = run_groups(pool, Work({}, Path), _base, _square_plus, groups, 9, None)
    store = ChunkStore(tmp_path / "state", "k")
    with Pool(2) as pool:
        out = run_groups(pool, Work({}, Path), _base, _die_once_in_group, groups, 9, None, store)
    assert [int(c["y"][0]) for c in out] == [int(c["y"][0]) for c in serial] == [100, 101, 104, 209, 216, 225,
                                                                                  336, 349, 364]
    for x in (3, 7):
        assert int(out[x]["pid"][0]) != int((tmp_path / f"killed-{x}").read_text())   # ran again, elsewhere
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [f"chunk-{i:06d}.npz" for i in range(9)]


def _square_plus(_opened: None, base: int, payload: tuple[int, str]) -> dict[str, np.ndarray]:
    return {"y": np.array([base + payload[0] ** 2])}


def _read_offset(folder: Path) -> int:
    return int((folder / "offset").read_text())


def _plus(offset: int, x: int) -> dict[str, np.ndarray]:
    return {"y": np.array([offset + x]), "pid": np.array([os.getpid()])}


def test_one_pool_serves_programs_in_turn_and_opens_each_once(ray_two):
    """The pool's tasks are made remote once; each program's key is opened once, and a later map over another
    program gets that program's opened value, not the first one's."""
    first, second = Work({"offset": b"100"}, _read_offset), Work({"offset": b"200"}, _read_offset)
    with Pool(2) as pool:
        tasks = pool._tasks
        runs = [[int(r["y"][0]) for _, r in sorted(pool.map(w, _plus, ((i, i) for i in range(4)), None))]
                for w in (first, second, first)]
        assert pool._tasks is tasks and pool._open_keys == {first.key, second.key}
    assert runs == [[100, 101, 102, 103], [200, 201, 202, 203], [100, 101, 102, 103]]


def test_an_interrupted_eval_resumes_from_its_chunk_files(classifier, tmp_path, monkeypatch, capsys):
    import neurocomp.evaluate as evaluate

    prog, data = classifier
    whole = _eval(prog, data, tmp_path / "whole.npz")
    ran: list = []
    _watch(monkeypatch, evaluate, "eval_chunk", lambda payload: payload[2], ran, stop=3)
    state = tmp_path / "state"
    argv = ["eval", str(prog), "--data", str(data), "--chunk", str(CHUNK), "--state", str(state), "--json"]
    assert main(argv + ["--out", str(tmp_path / "resumed.npz")]) == 2 and "interrupted" in capsys.readouterr().err
    assert ran == [0, 1, 2] and len(list(state.glob("chunk-*.npz"))) == 3 and not (tmp_path / "resumed.npz").exists()
    monkeypatch.undo()
    _watch(monkeypatch, evaluate, "eval_chunk", lambda payload: payload[2], ran)
    resumed = _eval(prog, data, tmp_path / "resumed.npz", "--state", str(state))
    assert ran == [0, 1, 2, 3, 4, 5]   # chunks 0-2 read back, not run again
    assert (tmp_path / "resumed.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()
    assert (resumed["correct"], resumed["energy_per_sample_j"]) == (whole["correct"], whole["energy_per_sample_j"])
    # another run's chunks are refused, not mixed in
    assert main(argv[:-1] + ["--seed", "1", "--json"]) == 2
    assert "holds chunks of another run" in capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("address", "--address 127.0.0.1:1: cannot reach a Ray head node"),
    ("shape", "the program's input 'x' takes (samples, 2, 6, 6)"),
    ("labels", "no array 'y'"),
])
def test_bad_input_is_one_line_before_any_work(classifier, tmp_path, capsys, case, message):
    prog, data = classifier
    argv = ["eval", str(prog), "--data", str(data)]
    if case == "address":
        argv += ["--address", "127.0.0.1:1"]
    elif case == "shape":
        np.savez(tmp_path / "bad.npz", input=np.zeros((4, 3, 6, 6)), labels=np.zeros(4, int))
        argv[3] = str(tmp_path / "bad.npz")
    else:
        argv += ["--labels", "y"]
    assert main(argv + ["--state", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "state").exists()   # nothing scheduled, nothing written


def test_one_worker_imports_no_ray(classifier):
    prog, data = classifier
    code = ("import sys; from neurocomp.cli import main; "
            f"assert main(['eval', {str(prog)!r}, '--data', {str(data)!r}, '--quiet']) == 0; "
            "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pool_runs_a_task_serially_without_ray():
    with Pool(1) as pool:
        out = run_chunks(pool, Work({}, Path), _square, lambda skip: ((i, i) for i in range(4) if i not in skip), 4, None)
    assert [int(c["y"][0]) for c in out] == [0, 1, 4, 9] and pool.startup_s == 0.0


def test_a_sweep_on_two_ray_workers_gives_the_serial_table(ray_two, classifier, tmp_path):
    from neurocomp.errors import UserError
    from neurocomp.program import Program
    from neurocomp.sweep import grid, sweep, sweep_table

    prog, data = classifier
    points = grid(["truenorth", "loihi"], [8, 12], ["levels"])
    assert points == [("truenorth", 8, "levels"), ("truenorth", 12, "levels"), ("loihi", 8, "levels"), ("loihi", 12, "levels")]
    with Pool(1) as pool:
        serial = sweep(prog.with_name("cnn.pt"), data, points, pool)
    argv = ["sweep", str(prog.with_name("cnn.pt")), "--data", str(data), "--targets", "truenorth", "loihi",
            "--timesteps", "8", "12", "--weights", "levels", "--json"]
    one = _json(argv + ["--out", str(tmp_path / "serial.json")])
    two = _json(argv + ["--out", str(tmp_path / "ray.json"), "--workers", "2"])
    assert (tmp_path / "serial.json").read_bytes() == (tmp_path / "ray.json").read_bytes()
    assert one["rows"] == two["rows"] == json.loads((tmp_path / "ray.json").read_text())["rows"]
    assert [(r["target"], r["timesteps"], r["accuracy"], r["cores"]) for r in two["rows"]] == [
        (r.target, r.timesteps, r.accuracy, r.cores) for r in serial]
    assert sweep_table(serial).count("\n") == 2 + len(points)
    z = np.load(data)
    direct = Program.load(prog).run(z["input"])   # the fixture's program is the loihi T = 8 point
    assert serial[2].accuracy == float((direct.output[:, -1].argmax(-1) == z["labels"]).mean())
    with pytest.raises(UserError, match="loihi has no weight mode 'trinary'"):
        grid(["truenorth", "loihi"], [8], ["trinary"])


def test_an_interrupted_sweep_resumes_from_its_finished_chunks(classifier, tmp_path, monkeypatch, capsys):
    import neurocomp.sweep as sweep

    prog, data = classifier
    compiled: list = []
    ran: list = []
    _watch(monkeypatch, sweep, "compile_point", tuple, compiled)
    real = sweep.sweep_chunk

    def chunk(opened, program, part):   # chunk 1 of the second point (T = 8: largest T first) is interrupted
        if (program.manifest["options"]["timesteps"], part[2]) == (8, 1):
            raise KeyboardInterrupt
        ran.append((program.manifest["options"]["timesteps"], part[2]))
        return real(opened, program, part)

    monkeypatch.setattr(sweep, "sweep_chunk", chunk)
    argv = ["sweep", str(prog.with_name("cnn.pt")), "--data", str(data), "--targets", "loihi", "--timesteps", "8", "12",
            "--chunk", "16", "--state", str(tmp_path / "state"), "--json"]
    assert main(argv) == 2 and "interrupted" in capsys.readouterr().err
    assert compiled == [("loihi", 12, None), ("loihi", 8, None)] and ran == [(12, 0), (12, 1), (12, 2), (8, 0)]
    monkeypatch.undo()
    compiled.clear()
    ran.clear()
    _watch(monkeypatch, sweep, "compile_point", tuple, compiled)
    monkeypatch.setattr(sweep, "sweep_chunk", lambda *a: ran.append(a[2][2]) or real(*a))
    resumed = _json(argv)
    assert compiled == [("loihi", 8, None)] and ran == [1, 2]   # T = 12 read back, not compiled again
    assert resumed["rows"] == _json(argv[:-3] + ["--json"])["rows"]


@pytest.mark.parametrize("case, message", [
    ("shape", "the model's input takes (samples, 2, 6, 6) or (samples, ticks, 2, 6, 6)"),
    ("labels", "no array 'y'"),
    ("mode", "sweep: target loihi has no weight mode 'bits' (it has levels, coarse)"),
    ("out", "it exists and is not a neurocomp sweep table"),
])
def test_a_bad_sweep_is_one_line_before_any_work(classifier, tmp_path, capsys, case, message):
    prog, data = classifier
    argv = ["sweep", str(prog.with_name("cnn.pt")), "--data", str(data), "--targets", "truenorth", "loihi",
            "--timesteps", "8", "--state", str(tmp_path / "state")]
    if case == "shape":
        np.savez(tmp_path / "bad.npz", input=np.zeros((4, 3, 6, 6)), labels=np.zeros(4, int))
        argv[3] = str(tmp_path / "bad.npz")
    elif case == "labels":
        argv += ["--labels", "y"]
    elif case == "mode":
        argv += ["--weights", "bits"]
    else:
        (tmp_path / "table.json").write_text("{}")
        argv += ["--out", str(tmp_path / "table.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "state").exists()
    assert case != "out" or (tmp_path / "table.json").read_text() == "{}"


def test_an_interrupted_track_resumes_from_its_finished_clips(tmp_path, monkeypatch, capsys):
    import neurocomp.tracking as tracking
    from test_siamsnn import _tiny_siamsnn

    save_graph(_tiny_siamsnn(), tmp_path / "tiny.pt")
    prog = tmp_path / "tiny.tn"
    assert main(["compile", str(tmp_path / "tiny.pt"), "--target", "truenorth", "-o", str(prog), "--quiet"]) == 0
    argv = ["track", str(prog), "--clips", "3", "--frames", "3", "--ticks", "8", "--exemplar-ticks", "16", "--tau0", "2"]
    whole = _json(argv + ["--out", str(tmp_path / "whole.json"), "--json"])
    ran: list = []
    _watch(monkeypatch, tracking, "track_one", lambda payload: payload[0], ran, stop=2)
    state = ["--state", str(tmp_path / "state")]
    assert main(argv + state + ["--out", str(tmp_path / "resumed.json"), "--json"]) == 2
    assert "interrupted" in capsys.readouterr().err and ran == [0, 1] and not (tmp_path / "resumed.json").exists()
    monkeypatch.undo()
    _watch(monkeypatch, tracking, "track_one", lambda payload: payload[0], ran)
    resumed = _json(argv + state + ["--out", str(tmp_path / "resumed.json"), "--json"])
    assert ran == [0, 1, 2]   # clips 0 and 1 read back from their chunk files
    assert (tmp_path / "resumed.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert resumed["per_clip"] == whole["per_clip"]
    assert main(argv + state + ["--frames", "4", "--json"]) == 2   # another run's clips are refused, not mixed in
    assert "holds chunks of another run" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _ray_head(env: dict[str, str]):
    """A Ray head node of its own (`ray start --head --block`), stopped with its processes afterwards; never `ray
    stop`, which would take every Ray on the machine with it."""
    import socket
    import tempfile
    import time

    port, temp = _free_port(), tempfile.mkdtemp(prefix="rh", dir="/tmp")   # short: Ray's socket paths have a limit
    head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                             f"--port={port}", "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        for _ in range(600):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGKILL)   # SIGTERM waits half a minute for Ray's graceful shutdown
        head.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_cluster_without_this_neurocomp_is_one_line_before_any_work(classifier, tmp_path):
    """The cluster's workers import another `neurocomp` (a package shadowing ours on their PYTHONPATH): the driver
    says so in one line and exits 2; nothing is written. The same head without the shadow runs the eval."""
    prog, data = classifier
    fake = tmp_path / "fake" / "neurocomp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not this project')\n")
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    with _ray_head(env | {"PYTHONPATH": str(fake.parent)}) as address:
        done = subprocess.run([sys.executable, "-m", "neurocomp.cli", "eval", str(prog), "--data", str(data),
                               "--address", address, "--out", str(tmp_path / "out.npz")],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"neurocomp: error: --address {address}: the cluster's workers cannot import neurocomp (install this project "
        "on every node: pip install 'neurocomp[cluster]'; RayTaskError(RuntimeError))")
    assert not (tmp_path / "out.npz").exists()
    with _ray_head(env) as address:   # the control: the same head with this project's neurocomp runs the eval
        done = subprocess.run([sys.executable, "-m", "neurocomp.cli", "eval", str(prog), "--data", str(data),
                               "--address", address, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["samples"] == SAMPLES


def test_a_tracking_stage_on_two_ray_workers_equals_serial_and_the_direct_run(ray_two):
    from neurocomp.models import otb
    from neurocomp.models.stage_tracking import Stage, score
    from neurocomp.models.tracker import ann_tracker
    from neurocomp.models.tracking_data import benchmark
    from neurocomp.models.train_siamsnn import load_float

    models = Path(__file__).resolve().parents[1] / "models"
    stage = Stage("float ANN", "micro3g", str(models))
    clips = [("test", 700_000 + k, 4) for k in range(2)] + [("fresh", 700_000, 4)]
    with Pool(1) as pool:
        serial = score(stage, clips, pool)
    with Pool(2) as pool:
        ray = score(stage, clips, pool)
    made = benchmark("test", 2, 4, 7) + benchmark("fresh", 1, 4, 7)
    tracker = ann_tracker(load_float("micro3g", models / "siamfc_micro3g_native.pt"))
    direct = otb.ope([tracker.track(c) for c in made], [c.boxes for c in made])
    assert serial == ray and (serial["auc"], serial["precision"]) == (direct.auc, direct.precision)
    assert serial["emulator_s"] == 0.0
