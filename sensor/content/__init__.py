"""Content layer: encodings peeled off objects and bounded decompression."""

from sensor.content.base import Decoder, Peeled, decoders
from sensor.registry import import_submodules

import_submodules(__name__, __path__, skip=("base", "decompress"))

__all__ = ["Decoder", "Peeled", "decoders"]
