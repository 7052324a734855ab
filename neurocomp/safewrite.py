"""Where neurocomp may write, and how: one policy for every command that writes an artifact.

An output path is written only when that cannot destroy anything neurocomp did not create.
`check` refuses (UserError: exit 2, one line, nothing touched) an output that is the current
directory or one of its ancestors, equals an input, contains an input, lies inside an input
directory (a program), lies under a regular file or in a directory we cannot write, is a
symbolic link, or exists and is not an artifact of the same kind. What counts as "of the same
kind" is the artifact's own business: each writer defines a `Kind` whose `not_ours` checks the
marker it embeds (a program's manifest and file list, a format field in a .pt, an attribute in
a .nir, a key in a run's .npz, a GIF comment). An empty directory may become a program.

`writing` then builds the artifact in a temporary sibling (ordinary permissions: 0o666 or
0o777 minus the umask) and renames it into place, so readers never see half an artifact, and
an existing artifact is replaced only once the new one is complete: a file by one rename, a
directory by renaming the old one aside, the new one in, and deleting the aside's files. On
any failure the temporary sibling and any parent folders it created are removed and the old
artifact is left exactly as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from neurocomp.errors import FormatError, UserError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@dataclass(frozen=True)
class Kind:
    """A kind of artifact: its name, whether it is a directory, and why an existing path is not one (None: it is)."""

    name: str
    is_dir: bool
    not_ours: Callable[[Path], str | None]


def check(out: str | Path, kind: Kind, inputs: Sequence[str | Path] = ()) -> None:
    """Raise UserError, touching nothing, unless writing `out` can only replace an artifact of `kind`."""
    out = Path(out)
    try:
        why = _why_not(out, kind, [Path(p) for p in inputs])
    except (OSError, RuntimeError, ValueError) as e:   # unreadable folders, symlink loops, NUL bytes in a name
        why = f"cannot inspect it ({getattr(e, 'strerror', None) or e})"
    if why:
        raise UserError(f"refusing to write {out}: {why}; nothing was changed")


def _why_not(out: Path, kind: Kind, inputs: list[Path]) -> str | None:
    real = out.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        return "it is the current directory" if real == cwd else "it contains the current directory"
    for src in inputs:
        s = src.resolve()
        if real == s or (out.exists() and src.exists() and os.path.samefile(out, src)):
            return f"it is the input {src}"
        if real in s.parents:
            return f"it contains the input {src}"
        if src.is_dir() and s in real.parents:
            return f"it is inside the input {src}"
    return _parent_problem(out) or _existing_problem(out, kind)


def _parent_problem(out: Path) -> str | None:
    """The nearest existing ancestor must be a directory we may write in."""
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            return f"{parent} is a dangling symbolic link"
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in {parent}"
    return None


def _existing_problem(out: Path, kind: Kind) -> str | None:
    if out.is_symlink():
        return "it is a symbolic link; name the artifact's real path"
    if not out.exists():
        return None
    if kind.is_dir:
        if not out.is_dir():
            return f"it exists and is not a directory (a {kind.name} is one)"
        if not any(out.iterdir()):
            return None
    elif out.is_dir():
        return f"it is a directory; name the {kind.name} file to write"
    elif not out.is_file():
        return "it exists and is not a regular file"
    why = kind.not_ours(out)
    return f"it exists and is not a {kind.name} ({why})" if why else None


@contextmanager
def writing(out: str | Path, kind: Kind, inputs: Sequence[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary sibling of `out` (a new empty directory, or a file path) to build the artifact in;
    on success it replaces `out`, on failure nothing is left behind. OS errors become FormatError."""
    out = Path(out)
    check(out, kind, inputs)
    made = _make_parents(out)
    tmp: Path | None = None
    try:
        tmp = _temp_sibling(out, kind.is_dir)
        yield tmp
        check(out, kind, inputs)   # again: something may have appeared there while we worked
        _put_in_place(tmp, out, kind)
    except BaseException as exc:
        if tmp is not None:
            _discard(tmp)
        for d in made:
            _rmdir_quietly(d)
        if isinstance(exc, OSError):
            raise FormatError(f"cannot write {out}: {exc.strerror or exc}") from None
        raise


def write_file(out: str | Path, kind: Kind, write: Callable[[Path], None], inputs: Sequence[str | Path] = ()) -> None:
    """`write(tmp)` a single-file artifact under the policy of `writing`."""
    with writing(out, kind, inputs) as tmp:
        write(tmp)


def _make_parents(out: Path) -> list[Path]:
    """Create the missing parent folders; return them deepest first (to remove them again on failure)."""
    missing = [p for p in out.parents if not p.exists()]
    try:
        for d in reversed(missing):
            d.mkdir()
    except OSError as e:
        for d in missing:
            _rmdir_quietly(d)
        raise FormatError(f"cannot write {out}: cannot create {e.filename}: {e.strerror}") from None
    return missing


def _temp_sibling(out: Path, is_dir: bool) -> Path:
    prefix = f".{out.name}."
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)   # mkdtemp makes it private; give it the usual mode
        return tmp
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=out.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_UMASK)
    return Path(name)


def _put_in_place(tmp: Path, out: Path, kind: Kind) -> None:
    if not (kind.is_dir and out.exists() and any(out.iterdir())):
        os.replace(tmp, out)   # a file, or a directory where none (or an empty one) was: one atomic rename
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, aside)     # renaming a directory over an empty one is atomic on POSIX
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(aside, out)
        raise
    listed = list(aside.iterdir())     # taken before the check: a file that appears after it is never deleted
    if kind.not_ours(aside) is None:   # still only the old artifact's own files: delete those one by one
        for f in listed:
            f.unlink()
        _rmdir_quietly(aside)
    # else, or if something appeared meanwhile: the old directory stays as `aside`, nothing is lost


def _discard(tmp: Path) -> None:
    """Remove our own temporary sibling (never anything else)."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def _rmdir_quietly(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass


def json_kind(name: str, format_name: str) -> Kind:
    """The kind of a JSON object file whose "format" field is `format_name`: only such a file may be replaced."""
    def not_ours(path: Path) -> str | None:
        try:
            mark = json.loads(path.read_text()).get("format")
        except Exception:  # unreadable, not JSON, not an object: not ours
            return "not a JSON object with a format field"
        return None if mark == format_name else "another format"

    return Kind(name, False, not_ours)
