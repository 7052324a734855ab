"""Skip marker shared by the tests that run Lava itself."""
from __future__ import annotations

import pytest

from neurocomp.backends import lava_compat
from neurocomp.errors import UserError


def _lava_skip_reason() -> str | None:
    """None if Lava imports (through the shim), else why the Lava tests are skipped."""
    try:
        lava_compat.import_lava()
    except UserError as exc:
        return str(exc)
    return None


LAVA_SKIP = _lava_skip_reason()
needs_lava = pytest.mark.skipif(LAVA_SKIP is not None, reason=f"lava not importable: {LAVA_SKIP}")
