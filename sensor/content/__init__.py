"""Content layer: encodings peeled off objects and bounded decompression."""

from sensor.content.base import Decoder, Peeled, decoders
from sensor.registry import import_submodules

# modules that are not decoder plug-ins: the seam itself and helpers the protocol layer calls
NOT_PLUGINS = ("base", "decompress", "codings", "forms", "headers", "mail", "multipart")
import_submodules(__name__, __path__, skip=NOT_PLUGINS)

__all__ = ["NOT_PLUGINS", "Decoder", "Peeled", "decoders"]
