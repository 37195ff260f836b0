"""`make sanitize`: the compiled core built with AddressSanitizer and UBSan. This test shows the flags took:
a one-byte over-read, switched on for tests only, must abort the process with an ASan report.

It runs only under `make sanitize` (STAGEWATCH_SANITIZED=1, with the ASan runtime preloaded): in a normal
build an over-read of one byte goes unseen, which is the point of the sanitizer build.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sensor import native as core

PROBE = """
from sensor import _core
frame = bytes(range(256)) * 2
assert _core.decode_fast(1.0, 1, frame, 1) is None or True  # a clean call first
_core._test_overread(True)
_core.decode_fast(1.0, 1, frame, 2)
print("no report")
"""


@pytest.mark.skipif(os.environ.get("STAGEWATCH_SANITIZED") != "1", reason="only under `make sanitize`")
def test_a_one_byte_overread_aborts_the_sanitized_core():
    assert core.compiled is not None, core.why_reference
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "AddressSanitizer: heap-buffer-overflow" in done.stderr
    assert "no report" not in done.stdout


def test_the_overread_switch_is_off_by_default():
    if core.compiled is None:
        pytest.skip(f"no compiled core: {core.why_reference}")
    frame = bytes(range(256)) * 2
    assert core.compiled.decode_fast(1.0, 1, frame, 1) == core.compiled.decode_fast(1.0, 1, frame, 1)
