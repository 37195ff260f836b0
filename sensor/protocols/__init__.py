"""Application layer: extractors that turn reassembled streams into the objects protocols carry."""

from sensor.protocols.base import DirBuffer, Extractor, Wire, extractors
from sensor.registry import import_submodules

NOT_PLUGINS = (
    "base",
    "session",
    "http_head",
    "websocket",
    "dns_message",
    "dns_tunnel",
    "smb_files",
    "identity",
)  # the seam, the session that drives it, helpers; identity/ is a package of its own (host names from the wire)
import_submodules(__name__, __path__, skip=NOT_PLUGINS)

__all__ = ["NOT_PLUGINS", "DirBuffer", "Extractor", "Wire", "extractors"]
