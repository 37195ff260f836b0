"""Format verifiers; each module registers one class for one `Format`."""

from sensor.detect.verifiers.base import Context, Verified, Verifier, judge_stream, verifiers
from sensor.registry import import_submodules

import_submodules(__name__, __path__, skip=("base",))

__all__ = ["Context", "Verified", "Verifier", "judge_stream", "verifiers"]
