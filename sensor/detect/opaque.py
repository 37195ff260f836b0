"""Opaque blobs: a staged file of no known type whose bytes are nearly uniform (issue "Compress or encrypt").

Shannon entropy alone says "high" for compressed and encrypted data alike; the chi-square statistic of the byte
histogram tells them apart where it can: ciphertext and random data are uniform (about 255, the degrees of
freedom, give or take 23), while compressors leave a visible bias (deflate's, even at 7.99 bits per byte, puts
it in the thousands over a MiB). Never a finding and never an alert: a record of its own kind, an event that
says what the statistic is.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from sensor.model import Buffer

MIN_SIZE = 64 * 1024
SAMPLE = 1024 * 1024  # bytes of the file the statistic is taken over (its start)
MIN_ENTROPY = 7.95  # bits per byte: below this the bytes are not near-maximal
UNIFORM_CHI2 = 330.0  # chi-square (255 degrees of freedom) at p = 0.001: above it, not uniform


class Uniformity(NamedTuple):
    """The statistics of a sample and what they suggest."""

    sample: int
    entropy: float  # Shannon, bits per byte
    chi_square: float
    verdict: str  # "uniform: encrypted or random" | "near-uniform: compressed in an unknown format"


def _chi_square(counts: list[int], n: int) -> float:
    expected = n / 256
    return sum((c - expected) ** 2 for c in counts) / expected if n else 0.0


def uniformity(data: bytes) -> float:
    """The chi-square statistic of the byte histogram of `data`'s first SAMPLE bytes against a uniform one
    (255 degrees of freedom)."""
    sample = data[:SAMPLE]
    return _chi_square([sample.count(bytes((b,))) for b in range(256)], len(sample))


def measure(data: Buffer) -> Uniformity | None:
    """The uniformity of `data`'s first SAMPLE bytes, or None when they are not near-maximal entropy."""
    sample = bytes(data[:SAMPLE])
    n = len(sample)
    if n < MIN_SIZE:
        return None
    counts = [sample.count(bytes((b,))) for b in range(256)]
    chi2 = _chi_square(counts, n)
    entropy = -sum(c / n * math.log2(c / n) for c in counts if c)
    if entropy < MIN_ENTROPY:
        return None
    verdict = (
        "uniform: encrypted or random" if chi2 <= UNIFORM_CHI2 else "near-uniform: compressed in an unknown format"
    )
    return Uniformity(n, round(entropy, 4), round(chi2, 1), verdict)


__all__ = ["MIN_SIZE", "UNIFORM_CHI2", "Uniformity", "measure", "uniformity"]
