"""Which packet core runs: the compiled one (sensor/flow/_core.pyx, built by Cython on install) or the Python
reference beside it (shared/STYLE.md §9, the aio-libs way), chosen here and nowhere else.

The reference runs when the compiled module cannot be imported (no compiler on the machine that installed
stagewatch; the extension is optional) or when STAGEWATCH_NO_EXTENSIONS=1 asks for it; either way one
warning line says so, and `stagewatch --version` names the core.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

from loguru import logger

ENV = "STAGEWATCH_NO_EXTENSIONS"


def _load() -> tuple[ModuleType | None, str | None]:
    if os.environ.get(ENV, "") not in ("", "0"):
        return None, f"{ENV} is set"
    try:
        from sensor.flow import _core  # type: ignore[attr-defined]
    except ImportError as e:
        return None, f"the compiled core did not load ({e})"
    return _core, None


compiled, why_reference = _load()
_warned = False


def name() -> str:
    """The core in use, as `stagewatch --version` prints it."""
    return "compiled core (Cython)" if compiled is not None else f"Python reference core ({why_reference})"


def _reference_in_use() -> None:
    global _warned
    if compiled is None and not _warned:
        _warned = True
        logger.warning("packet path: the Python reference core runs: {}", why_reference)


def decode_fast() -> Callable[[float, int, bytes, int], Any]:
    """The decoder's fast path: compiled when it loaded, else the reference (sensor/flow/decode.py)."""
    if compiled is not None:
        return compiled.decode_fast  # type: ignore[no-any-return]
    _reference_in_use()
    from sensor.flow.decode import decode_fast as reference

    return reference
