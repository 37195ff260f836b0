"""Which packet core runs: the compiled one (sensor/_core.pyx: capture records and decoding; sensor/_flow.pyx:
the flow table, reassembly and chunker; built by Cython on install) or the Python reference beside it
(shared/STYLE.md §9, the aio-libs way), chosen here and nowhere else, when a stage first asks.

The reference runs when the compiled module cannot be imported (no compiler on the machine that installed
stagewatch; the extension is optional) or when STAGEWATCH_NO_EXTENSIONS=1 asks for it; either way one
warning line says so, and `stagewatch --version` names the core. Each stage asks `pick(name, reference)`
for its function: the compiled one of that name, or its own Python reference.
"""

from __future__ import annotations

import importlib
import os
from types import SimpleNamespace
from typing import TypeVar

from loguru import logger

ENV = "STAGEWATCH_NO_EXTENSIONS"
F = TypeVar("F")


MODULES = ("sensor._core", "sensor._flow")  # all of them or none: the two cores are never mixed


def _load() -> tuple[SimpleNamespace | None, str | None]:
    if os.environ.get(ENV, "") not in ("", "0"):
        return None, f"{ENV} is set"
    names: dict[str, object] = {}
    try:  # the optional extensions, looked up by name: the package itself is not imported from here
        for module in MODULES:
            names.update((k, v) for k, v in vars(importlib.import_module(module)).items() if not k.startswith("__"))
    except ImportError as e:
        return None, f"the compiled core did not load ({e})"
    return SimpleNamespace(**names), None


_state: tuple[SimpleNamespace | None, str | None] | None = None
_warned = False


def __getattr__(attr: str) -> object:
    """`compiled` (the compiled core's names, or None) and `why_reference`, loaded on first use: a command
    that reads no capture does not import the core."""
    global _state
    if attr in ("compiled", "why_reference"):
        if _state is None:
            _state = _load()
        return _state[0] if attr == "compiled" else _state[1]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def name() -> str:
    """The core in use, as `stagewatch --version` prints it."""
    compiled = __getattr__("compiled")
    return (
        "compiled core (Cython)" if compiled is not None else f"Python reference core ({__getattr__('why_reference')})"
    )


def pick(function: str, reference: F) -> F:
    """The compiled `function` when the core loaded, else `reference` (said once, as a warning)."""
    global _warned
    compiled = __getattr__("compiled")
    if compiled is not None:
        return getattr(compiled, function)  # type: ignore[no-any-return]
    if not _warned:
        _warned = True
        logger.warning("packet path: the Python reference core runs: {}", __getattr__("why_reference"))
    return reference
