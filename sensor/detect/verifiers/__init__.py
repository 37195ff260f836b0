"""Format verifiers; each module registers one class for one `Format`."""

from sensor.detect.verifiers.base import Context, Verified, Verifier, judge_stream, verifiers
from sensor.registry import import_submodules

NOT_PLUGINS = ("base", "encrypted", "lz_output")  # the seam; helpers the verifiers share
import_submodules(__name__, __path__, skip=NOT_PLUGINS)

__all__ = ["NOT_PLUGINS", "Context", "Verified", "Verifier", "judge_stream", "verifiers"]
