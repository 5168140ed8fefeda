"""Index files verified once: a record in the user's cache lets the next open of the same,
unchanged files skip the sha256 pass.

When :func:`snca_cli.tasks.index.store.read_index` has verified every file of an index (sizes,
sha256 against the manifest, the tile table against the manifest), it records what it checked
in ``verified/<key>.json`` of snca's cache folder (:func:`snca_cli.runtime.user_cache.
cache_folder`; never inside the index, which holds only its listed files): the index's real
path, the sha256 of the manifest's text and, per file, what the operating system keeps of the
very handle that was hashed: device, inode, size, mtime and ctime in nanoseconds. The next open
compares its own handles with the record; only when all of them are the same are the hashes
skipped. A write to a file changes its ctime (which, unlike mtime, no user can set back), a
replaced file has another inode, a new version of the index (``index add``, a rebuild) other
files and manifest: each makes the record not match, and the files are verified again (and the
record renewed). A record that cannot be read, is not JSON or describes other files is ignored.

What a record cannot see is a change the operating system does not stamp: bits rotting on the
disk, a write to the raw device, or, on Windows (whose ctime is the creation time), a file
edited in place whose writer set mtime back. ``verify="always"`` (``snca search --verify``)
verifies every file whatever the record says.

File systems stamp times from a clock that ticks (every 1-10 ms on Linux, 2 s on FAT), so a
file written again within the tick of its last change keeps the same times: files changed less
than :data:`RACY_S` before they were checked are not recorded (git's "racy" rule), and the open
after next records them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import atomic_output, read_record
from snca_cli.runtime.user_cache import cache_folder

#: The folder of verification records in snca's cache folder.
RECORDS_FOLDER = "verified"
#: What a record says it is; another value (a foreign or older record) is ignored.
RECORD_FORMAT = "snca-verified-index/1"
#: Files changed less than this many seconds before they were checked are not recorded.
RACY_S = 2.0


def record_path(real_dir: Path) -> Path:
    """The record of the index whose real path is ``real_dir``."""
    key = hashlib.sha256(os.fsencode(real_dir)).hexdigest()[:32]
    return cache_folder() / RECORDS_FOLDER / f"{key}.json"


def file_state(info: os.stat_result) -> list[int]:
    """What tells one state of a file from another: device, inode, size, mtime, ctime (ns)."""
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def verification_record(
    real_dir: Path, manifest_sha256: str, files: dict[str, os.stat_result]
) -> dict:
    """The record of an index at ``real_dir`` whose manifest's text has ``manifest_sha256`` and
    whose listed files are in the states ``files`` (``fstat`` of their open handles)."""
    return {
        "format": RECORD_FORMAT,
        "index": str(real_dir),
        "manifest_sha256": manifest_sha256,
        "files": {name: file_state(info) for name, info in sorted(files.items())},
    }


def is_recorded(record: dict) -> bool:
    """Whether ``record`` is the one kept for its index: those very files were verified."""
    stored, reason = read_record(record_path(Path(record["index"])))
    return reason is None and stored == record


def save_record(record: dict, files: dict[str, os.stat_result]) -> bool:
    """Keep ``record`` (atomically) unless a file of ``files`` changed less than
    :data:`RACY_S` ago; whether it was kept. A cache that cannot be written only costs the
    next open its hashing."""
    settled = time.time_ns() - int(RACY_S * 1e9)
    if any(max(info.st_mtime_ns, info.st_ctime_ns) > settled for info in files.values()):
        return False
    try:
        with atomic_output(record_path(Path(record["index"])), force=True) as staged:
            staged.write_text(json.dumps(record), encoding="utf-8")
    except SncaError:
        return False
    return True
