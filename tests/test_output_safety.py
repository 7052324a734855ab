"""Output paths never destroy anything neurocomp did not create (neurocomp.safewrite).

Each case places a user's file, runs the command, and asserts exit 2, one line on stderr and
the whole folder byte for byte as it was (so also: no temporary or empty directory left).
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.errors import FormatError
from neurocomp.frontend.ptfile import save_graph
from neurocomp.program import load
from netlib import integer_cnn, random_spikes

USER = b"the user's own bytes\n"

# integer_cnn's biases fire it before its input arrives, which NIR cannot say: its export writes them as they act
EARLY = ["--bias-timing", "early"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A loihi program of the integer CNN, with its model and a run input."""
    root = tmp_path_factory.mktemp("built")
    save_graph(integer_cnn(), root / "net.pt")
    np.savez(root / "in.npz", input=random_spikes((2, 6, 6), batch=1, ticks=4, rate=0.3))
    assert main(["compile", str(root / "net.pt"), "--target", "loihi", "-o", str(root / "loihi"), "--json"]) == 0
    return root


@pytest.fixture()
def work(built, tmp_path) -> Path:
    """A private copy of `built` to run commands in."""
    shutil.copytree(built, tmp_path, dirs_exist_ok=True)
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root (directories as None) with its bytes."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def refused(capsys, argv: list[str], root: Path, needle: str) -> None:
    """`argv` exits 2 with one line containing `needle` and leaves everything under root as it was."""
    before = snapshot(root)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert snapshot(root) == before


def test_compile_into_a_directory_with_user_files(work, capsys):
    (work / "mine").mkdir()
    (work / "mine" / "thesis.tex").write_bytes(USER)
    refused(capsys, ["compile", str(work / "net.pt"), "--target", "loihi", "-o", str(work / "mine")], work,
            "not a neurocomp program directory (no manifest.json)")
    assert (work / "mine" / "thesis.tex").read_bytes() == USER


def test_compile_into_the_current_directory(work, capsys, monkeypatch):
    (work / "notes.txt").write_bytes(USER)
    monkeypatch.chdir(work)
    refused(capsys, ["compile", "net.pt", "--target", "loihi", "-o", "."], work, "it is the current directory")


def test_compile_into_the_parent_directory(work, capsys, monkeypatch):
    (work / "sub").mkdir()
    (work / "notes.txt").write_bytes(USER)
    shutil.copy(work / "net.pt", work / "sub" / "net.pt")
    monkeypatch.chdir(work / "sub")
    refused(capsys, ["compile", "net.pt", "--target", "loihi", "-o", ".."], work, "it contains the current directory")


def test_compile_into_the_models_own_folder(work, capsys):
    (work / "models").mkdir()
    shutil.copy(work / "net.pt", work / "models" / "net.pt")
    (work / "models" / "notes.txt").write_bytes(USER)
    refused(capsys, ["compile", str(work / "models" / "net.pt"), "--target", "loihi", "-o", str(work / "models")],
            work, "it contains the input")


def test_compile_into_a_directory_with_someone_elses_manifest(work, capsys):
    (work / "pkg").mkdir()
    (work / "pkg" / "manifest.json").write_bytes(b'{"name": "my-extension", "version": 1}\n')
    (work / "pkg" / "arrays.npz").write_bytes(USER)
    refused(capsys, ["compile", str(work / "net.pt"), "--target", "loihi", "-o", str(work / "pkg")], work,
            "its manifest.json is not a neurocomp program's")


def test_recompile_keeps_a_note_added_inside_a_program(work, capsys):
    (work / "loihi" / "NOTE.md").write_bytes(USER)
    refused(capsys, ["compile", str(work / "net.pt"), "--target", "loihi", "-o", str(work / "loihi")], work,
            "it holds NOTE.md, which its manifest.json does not list")


def test_run_out_onto_its_own_input(work, capsys):
    refused(capsys, ["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(work / "in.npz")], work,
            "it is the input")


def test_run_out_into_the_programs_arrays(work, capsys):
    out = work / "loihi" / "arrays.npz"
    refused(capsys, ["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(out)], work,
            "it is inside the input")


def test_run_out_onto_a_users_npz_and_onto_a_directory(work, capsys):
    np.savez(work / "results.npz", mine=np.arange(3))
    (work / "outdir").mkdir()
    (work / "outdir" / "keep.txt").write_bytes(USER)
    refused(capsys, ["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(work / "results.npz")],
            work, "not a neurocomp run output .npz")
    refused(capsys, ["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(work / "outdir")],
            work, "it is a directory")


def test_run_out_replaces_its_own_earlier_output(work, capsys):
    out = work / "out.npz"
    for _ in range(2):
        assert main(["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(out), "--json"]) == 0
    with np.load(out) as z:
        assert z["format"].tolist() == ["neurocomp.run_outputs"] and z["output"].shape == (1, 4, 4)


def test_export_onto_its_input_nir(work, capsys):
    assert main(["export", str(work / "net.pt"), "--nir", str(work / "net.nir"), *EARLY]) == 0
    refused(capsys, ["export", str(work / "net.nir"), "--nir", str(work / "net.nir"), *EARLY], work, "it is the input")


def test_export_onto_a_users_nir_and_replacing_its_own(work, capsys):
    (work / "theirs.nir").write_bytes(USER)
    refused(capsys, ["export", str(work / "net.pt"), "--nir", str(work / "theirs.nir"), *EARLY], work,
            "not a neurocomp-written .nir (not an HDF5 file)")
    for _ in range(2):
        assert main(["export", str(work / "loihi"), "--nir", str(work / "ours.nir"), *EARLY]) == 0
    assert (work / "ours.nir").stat().st_size > 0


@pytest.mark.parametrize("onto", ["ann.pt2", "calib.npz"])
def test_convert_onto_its_ann_or_calibration(work, capsys, onto):
    (work / "ann.pt2").write_bytes(USER)
    (work / "calib.npz").write_bytes(USER)
    refused(capsys, ["convert", str(work / "ann.pt2"), "--calibration", str(work / "calib.npz"), "-o", str(work / onto)],
            work, "it is the input")


def test_convert_onto_a_users_pt(work, capsys):
    (work / "ann.pt2").write_bytes(USER)
    (work / "calib.npz").write_bytes(USER)
    (work / "theirs.pt").write_bytes(USER)
    refused(capsys, ["convert", str(work / "ann.pt2"), "--calibration", str(work / "calib.npz"), "-o",
                     str(work / "theirs.pt")], work, "not a neurocomp SNN .pt")


def test_track_gif_onto_a_users_file(work, capsys):
    (work / "holiday.gif").write_bytes(b"GIF89a" + USER)
    refused(capsys, ["track", str(work / "loihi"), "--frames", "2", "--gif", str(work / "holiday.gif")], work,
            "not a neurocomp track GIF")


def test_output_under_a_regular_file(work, capsys):
    (work / "plain").write_bytes(USER)
    refused(capsys, ["compile", str(work / "net.pt"), "--target", "loihi", "-o", str(work / "plain" / "prog")], work,
            "is a file, not a directory")
    refused(capsys, ["run", str(work / "loihi"), "--input", str(work / "in.npz"), "--out", str(work / "plain" / "o.npz")],
            work, "is a file, not a directory")


def test_output_in_an_unwritable_directory(work, capsys, monkeypatch):
    """The folder is read-only for this user (simulated through os.access, since root may write anywhere)."""
    (work / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p).name != "ro" and real_access(p, mode))
    refused(capsys, ["export", str(work / "net.pt"), "--nir", str(work / "ro" / "x.nir"), *EARLY], work,
            "no permission to write in")


def test_output_where_no_directory_can_be_made(work, capsys):
    """Even root cannot make a folder in /proc: an OS error on the path is exit 2, not a traceback."""
    refused(capsys, ["export", str(work / "net.pt"), "--nir", "/proc/neurocomp-test/x.nir", *EARLY], work, "cannot")


def test_recompile_over_a_genuine_program_replaces_it_with_ordinary_permissions(work, capsys):
    out = work / "loihi"
    assert main(["compile", str(work / "net.pt"), "--target", "truenorth", "-o", str(out), "--json"]) == 0
    assert load(out).netlist.target == "truenorth"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o666 & ~umask}
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_save_into_an_empty_directory(work):
    """A loaded program saves itself whole: the same arrays, model, target, report and manifest entries for them."""
    (work / "empty").mkdir()
    program = load(work / "loihi")
    program.save(work / "empty")
    again = load(work / "empty")
    assert again.netlist.n_cores == program.netlist.n_cores == 2 and again.report == program.report
    for name in ("arrays.npz", "model.pt", "target.toml", "report.json", "timings.json"):
        assert (work / "empty" / name).read_bytes() == (work / "loihi" / name).read_bytes(), name


def test_failing_compile_leaves_the_previous_program_byte_identical(work, capsys):
    """The netx export fails inside the temporary sibling (truenorth has no netx): the loihi program stays."""
    refused(capsys, ["compile", str(work / "net.pt"), "--target", "truenorth", "--export", "netx", "-o",
                     str(work / "loihi")], work, "netx export needs a loihi program")


def test_failing_export_leaves_no_directory_or_partial_file(work, capsys, monkeypatch):
    import nir

    def broken(path, graph, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nir, "write", broken)
    refused(capsys, ["export", str(work / "net.pt"), "--nir", str(work / "new" / "net.nir"), *EARLY], work,
            "No space left on device")


def test_failing_save_graph_leaves_no_directory_or_partial_file(work, monkeypatch):
    """convert writes through save_graph: a failure there leaves nothing behind."""
    import torch

    def broken(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken)
    before = snapshot(work)
    with pytest.raises(FormatError, match="No space left on device"):
        save_graph(integer_cnn(), work / "new" / "snn.pt", inputs=[work / "net.pt"])
    assert snapshot(work) == before


@pytest.mark.parametrize("command", ["convert", "export"])
def test_failing_convert_or_export_leaves_no_directory(work, capsys, command):
    (work / "ann.pt2").write_bytes(USER)
    (work / "calib.npz").write_bytes(USER)
    (work / "broken.pt").write_bytes(USER)
    argv = {"convert": ["convert", str(work / "ann.pt2"), "--calibration", str(work / "calib.npz"), "-o",
                        str(work / "new" / "snn.pt")],
            "export": ["export", str(work / "broken.pt"), "--nir", str(work / "new" / "net.nir"), *EARLY]}[command]
    refused(capsys, argv, work, "")


def test_a_version_1_program_may_be_replaced_but_not_with_a_note_in_it(work):
    """Programs from before file lists (version 1) are recognised by their manifest and v1's fixed file set."""
    from neurocomp.program import KIND

    old = work / "old"
    shutil.copytree(work / "loihi", old)
    (old / "timings.json").unlink()
    (old / "manifest.json").write_text('{"schema": "neurocomp.program", "version": 1, "arrays_sha256": "0"}')
    assert KIND.not_ours(old) is None
    (old / "note.txt").write_bytes(USER)
    assert KIND.not_ours(old) == "it holds note.txt, which its manifest.json does not list"


def test_a_file_that_appears_while_the_old_artifact_is_replaced_is_kept(tmp_path):
    """The old directory's files are listed before its check: a file a user adds after that listing (here, while
    the check runs) is never deleted; the old directory stays aside with it."""
    from neurocomp.safewrite import Kind, writing

    out = tmp_path / "art"
    out.mkdir()
    (out / "ours.txt").write_text("old")

    def not_ours(path: Path) -> str | None:
        if path != out and not (path / "late.txt").exists():   # the replaced directory, renamed aside
            (path / "late.txt").write_bytes(USER)
        return None

    with writing(out, Kind("test artifact", True, not_ours)) as tmp:
        (tmp / "ours.txt").write_text("new")
    assert (out / "ours.txt").read_text() == "new"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".art.") and p.name.endswith(".old")]
    assert len(kept) == 1 and (kept[0] / "late.txt").read_bytes() == USER and not (kept[0] / "ours.txt").exists()
