"""Make lava-nc 0.10.0 importable and runnable on Python 3.11 without touching files on disk.

lava-nc 0.10.0 declares Python <3.11 and breaks there in two places, both fixed here by
rewriting the module source in memory as it is imported (a ``sys.meta_path`` finder whose
loader patches the text before compiling it, bypassing ``__pycache__`` both ways):

* ``lava.magma.compiler.var_model``: ``ByteEncoder`` is a plain ``@dataclass`` used as a
  field default; 3.11 rejects unhashable defaults as mutable.  ``@dataclass(frozen=True)``
  makes it hashable; Lava never mutates it.
* ``lava.magma.runtime.message_infrastructure.multiprocessing`` calls
  ``mp.set_start_method('fork')`` unconditionally, which raises "context has already been
  set" whenever anything in the process touched multiprocessing's default context first
  (a pool, a queue, ``get_start_method()``), e.g. an earlier test.  The patch tolerates
  'fork' already being chosen; any other already-chosen method still fails (Lava's workers
  need fork), and :func:`import_lava` reports that as a UserError first.

Every patch must match exactly once, otherwise the import fails loudly: the shim is written
for the 0.10.0 wheel and must not silently half-apply to another version.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import multiprocessing
import re
import sys
import types
from collections.abc import Sequence

from neurocomp.errors import UserError

_INSTALL_HINT = ("lava-nc is not installed: run `make install` "
                 "(or pip install lava-nc==0.10.0 --no-deps --ignore-requires-python)")

# module name -> ((regex, replacement), ...); each regex must match exactly once.
_PATCHES: dict[str, tuple[tuple[str, str], ...]] = {
    "lava.magma.compiler.var_model": (
        (r"^@dataclass\s*\n(class ByteEncoder\b)", r"@dataclass(frozen=True)\n\1"),
    ),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        (r"mp\.set_start_method\('fork'\)",
         "mp.set_start_method('fork', force=mp.get_start_method(allow_none=True) == 'fork')"),
    ),
}


def patch_source(fullname: str, source: str) -> str:
    """Apply the patches registered for ``fullname`` to its source text."""
    for pattern, replacement in _PATCHES[fullname]:
        source, count = re.subn(pattern, replacement, source, flags=re.MULTILINE)
        if count != 1:
            raise ImportError(
                f"neurocomp lava_compat: expected exactly one match of {pattern!r} in {fullname}, "
                f"found {count}; this shim supports lava-nc 0.10.0 only", name=fullname)
    return source


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Source loader that patches the text and never reads or writes bytecode caches."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)

    def source_to_code(self, data: bytes, path: str, *,  # type: ignore[override]
                       _optimize: int = -1) -> types.CodeType:
        source = importlib.util.decode_source(data)
        return super().source_to_code(patch_source(self.name, source), path, _optimize=_optimize)


class _LavaPatchFinder(importlib.abc.MetaPathFinder):
    """Routes only the modules in ``_PATCHES`` to :class:`_PatchingLoader`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            raise ImportError(f"neurocomp lava_compat: no Python source for {fullname} to patch",
                              name=fullname)
        spec.loader = _PatchingLoader(fullname, spec.origin)
        spec.cached = None
        return spec


def install() -> None:
    """Put the patching finder first on ``sys.meta_path`` (idempotent)."""
    if not any(isinstance(f, _LavaPatchFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaPatchFinder())


def _check_start_method() -> None:
    """Lava forks its workers; refuse early (and clearly) if another method is already fixed."""
    method = multiprocessing.get_start_method(allow_none=True)
    if method not in (None, "fork"):
        raise UserError(f"Lava needs multiprocessing's 'fork' start method, but this process "
                        f"already uses {method!r}; import Lava before choosing another method")


def import_lava() -> types.ModuleType:
    """install(), import Lava (including both patched modules) and return the ``lava`` package."""
    install()
    if importlib.util.find_spec("lava") is None or importlib.util.find_spec("lava.magma") is None:
        raise UserError(_INSTALL_HINT)
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        _check_start_method()
    try:
        for name in _PATCHES:
            importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UserError(f"{_INSTALL_HINT}; importing it failed on the missing module {exc.name!r}") from exc
    return importlib.import_module("lava")


def lava_available() -> bool:
    """True if Lava imports (with the shim); a broken shim still raises instead of hiding."""
    try:
        import_lava()
    except UserError:
        return False
    return True
