"""Safe tree walk: symlinks are not followed, loops are impossible, errors are counted and reported."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from loguru import logger

from sensor.stats import RunStats

_KINDS = {
    stat.S_IFIFO: "a fifo",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _skip(stats: RunStats, path: str, reason: str, what: str) -> None:
    stats.skipped[reason] += 1
    logger.warning("{}: {}, skipped", path, what)


def _link_target(path: str) -> str:
    try:
        return f" to {os.readlink(path)}"
    except OSError:
        return ""


def walk(root: str, stats: RunStats) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files under `root` (or `root` itself) with their lstat; nothing outside the tree."""
    try:
        st = os.stat(root)  # the argument itself may be a symlink the analyst chose
    except FileNotFoundError:
        _skip(stats, root, "missing", "no such file or directory")
        return
    except PermissionError:
        _skip(stats, root, "permission", "permission denied")
        return
    except OSError as e:
        _skip(stats, root, "error", e.strerror or str(e))
        return
    if stat.S_ISREG(st.st_mode):
        yield root, st
        return
    if not stat.S_ISDIR(st.st_mode):
        _skip(stats, root, "special", f"not a regular file ({_KINDS.get(stat.S_IFMT(st.st_mode), 'special')})")
        return
    seen = {(st.st_dev, st.st_ino)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            _skip(stats, folder, "permission", "permission denied")
            continue
        except FileNotFoundError:
            _skip(stats, folder, "vanished", "vanished during the scan")
            continue
        except OSError as e:
            _skip(stats, folder, "error", e.strerror or str(e))
            continue
        subdirs = []
        for entry in entries:
            try:
                est = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                _skip(stats, entry.path, "vanished", "vanished during the scan")
                continue
            except OSError as e:
                _skip(stats, entry.path, "error", e.strerror or str(e))
                continue
            mode = est.st_mode
            if stat.S_ISLNK(mode):
                # a link may point out of the tree or loop back; name it so the analyst can scan its target
                target = _link_target(entry.path)
                _skip(stats, entry.path, "symlink", f"symlink{target} not followed")
            elif stat.S_ISDIR(mode):
                key = (est.st_dev, est.st_ino)
                if key not in seen:  # bind mounts can make a loop even without symlinks
                    seen.add(key)
                    subdirs.append(entry.path)
            elif stat.S_ISREG(mode):
                yield entry.path, est
            else:
                _skip(stats, entry.path, "special", f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'special')})")
        stack.extend(reversed(subdirs))
