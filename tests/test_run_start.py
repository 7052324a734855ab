"""What `neurocomp run` reads before its first tick: the manifest's input encodings, not model.pt (torch)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import _parser, main
from neurocomp.errors import FormatError
from neurocomp.frontend import ptfile
from neurocomp.frontend.ptfile import save_graph
from neurocomp.program import load
from netlib import integer_cnn, random_spikes


@pytest.fixture()
def program(tmp_path: Path) -> Path:
    save_graph(integer_cnn(), tmp_path / "net.pt")
    assert main(["compile", str(tmp_path / "net.pt"), "--target", "loihi", "-o", str(tmp_path / "prog"), "--json"]) == 0
    return tmp_path / "prog"


def test_the_manifest_records_each_inputs_encoding(program):
    manifest = json.loads((program / "manifest.json").read_text())
    assert manifest["encodings"] == {i.name: i.encoding for i in integer_cnn().inputs} == {"x": "spikes"}


def test_the_emulator_runs_without_reading_model_pt_and_the_reference_reads_it(program, monkeypatch):
    x = {"x": random_spikes((2, 6, 6), batch=1, ticks=12, rate=0.3)}
    calls = []
    real = ptfile.load_graph
    monkeypatch.setattr(ptfile, "load_graph", lambda path: calls.append(path) or real(path))
    emu = load(program).run(x).summary
    assert calls == []
    ref = load(program).run(x, backend="reference").summary
    assert calls == [program / "model.pt"]
    assert emu["spike_counts"] == ref["spike_counts"]


def test_a_forged_encoding_is_refused_on_load(program):
    path = program / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "encodings": {"input": "morse"}}))
    with pytest.raises(FormatError, match="'encodings' must map every input"):
        load(program)


def test_help_and_run_options_do_not_import_torch():
    """convert's options (whose defaults import torch) are built only for `neurocomp convert`."""
    code = ("import sys, contextlib, io\nfrom neurocomp.cli import _parser, main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])\n"
            "_parser('run').parse_args(['run', 'p', '--input', 'x.npz'])\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
    args = _parser("convert").parse_args(["convert", "m.pt2", "--calibration", "c.npz"])
    assert args.timesteps >= 1 and np.isfinite(args.percentile)


def test_running_a_program_on_the_emulator_does_not_import_torch(program):
    """Loading, verifying and emulating a program needs the ops' rows and the target's neuron model, not torch."""
    code = ("import sys\nimport numpy as np\nfrom pathlib import Path\nfrom neurocomp.program import load\n"
            f"p = Path({str(program)!r})\n"
            "x = {'x': (np.random.default_rng(0).random((1, 12, 2, 6, 6)) < 0.3).astype(np.uint8)}\n"
            "summary = load(p).run(x).summary\n"
            "print(summary['ticks'], 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["12", "False"], out.stderr
