"""Which packet core runs: the compiled one (sensor/_core.pyx, built by Cython on install) or the Python
reference beside it (shared/STYLE.md §9, the aio-libs way), chosen here and nowhere else.

The reference runs when the compiled module cannot be imported (no compiler on the machine that installed
stagewatch; the extension is optional) or when STAGEWATCH_NO_EXTENSIONS=1 asks for it; either way one
warning line says so, and `stagewatch --version` names the core. Each stage asks `pick(name, reference)`
for its function: the compiled one of that name, or its own Python reference.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TypeVar

from loguru import logger

ENV = "STAGEWATCH_NO_EXTENSIONS"
F = TypeVar("F")


def _load() -> tuple[ModuleType | None, str | None]:
    if os.environ.get(ENV, "") not in ("", "0"):
        return None, f"{ENV} is set"
    try:  # the optional extension, looked up by name: the package itself is not imported from here
        return importlib.import_module("sensor._core"), None
    except ImportError as e:
        return None, f"the compiled core did not load ({e})"


compiled, why_reference = _load()
_warned = False


def name() -> str:
    """The core in use, as `stagewatch --version` prints it."""
    return "compiled core (Cython)" if compiled is not None else f"Python reference core ({why_reference})"


def pick(function: str, reference: F) -> F:
    """The compiled `function` when the core loaded, else `reference` (said once, as a warning)."""
    global _warned
    if compiled is not None:
        return getattr(compiled, function)  # type: ignore[no-any-return]
    if not _warned:
        _warned = True
        logger.warning("packet path: the Python reference core runs: {}", why_reference)
    return reference
