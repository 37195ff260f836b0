"""Which inputs are another sensor's outputs: the scan's walk offers every file here first (after captures);
what is claimed is read once the walk is over, so logs and the files they describe meet whatever their order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from sensor.bridges import suricata, zeek_log
from sensor.bridges.base import Bridged
from sensor.bridges.suricata import SuricataBridge
from sensor.bridges.zeek import EXTRACT_NAME, ZeekBridge
from sensor.flow.direction import HomeNet
from sensor.stats import RunStats


class Bridges:
    """Zeek and Suricata outputs found among a scan's inputs."""

    def __init__(self, home_net: tuple[str, ...], stats: RunStats) -> None:
        home = HomeNet(home_net)
        self.zeek = ZeekBridge(home, stats)
        self.suricata = SuricataBridge(home, stats)
        self.claimed = 0

    def claim(self, path: str, head: bytes) -> bool:
        """True when `path` is a Zeek log or extracted file, an eve.json or a file-store file: kept for later."""
        parts = PurePath(path).parts
        if self.suricata.add_stored(path):
            pass
        elif EXTRACT_NAME.match(parts[-1]) or (len(parts) > 1 and parts[-2] == "extract_files"):
            self.zeek.add_extracted(path)
        # a rotated log's head is decompressed once, for both sniffers
        elif (log := zeek_log.sniff(path, text := zeek_log.head_text(head))) is not None:
            self.zeek.add_log(log)
        elif suricata.sniff(text):
            self.suricata.add_eve(path)
        else:
            return False
        self.claimed += 1
        return True

    def results(self) -> Iterator[Bridged | str]:
        """Flows, seen files, and the paths of extracted or stored files no log described."""
        if self.zeek.logs or self.zeek.extracted:
            yield from self.zeek.results()
        if self.suricata.eves or self.suricata.stored:
            yield from self.suricata.results()


__all__ = ["Bridges"]
