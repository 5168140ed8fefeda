"""Planted ``.snca-staging-*`` folders for the recovery's trust tests.

:class:`Site` makes an output folder ``out`` and, outside it, a victim folder and a victim
file; :meth:`Site.plant` plants one attack into ``out`` by name (:data:`ISSUE_CASES`: the
files of the issue, in the journal and pointer format of snca before the fix) and
:func:`forge` plants a journal in the current format with a valid checksum, as an attacker
who read snca's source would. Every planted folder looks abandoned two hours ago.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from snca_cli.runtime import atomic

PRECIOUS = "precious data"
ATTACKER = "attacker's content"
#: The name of every planted staging folder (a valid token: 12 hex digits).
PLANTED = f"{atomic.STAGING_PREFIX}aaaaaaaaaaaa"

#: The issue's attacks, by name (see :meth:`Site.plant`).
ISSUE_CASES = [
    "primary is the absolute victim folder",
    "primary is ../victim",
    "journal target is an absolute path",
    "journal target climbs out with ..",
    "journal target is relative with ..",
    "journal target is through a symlinked folder",
    "journal staged entry is the victim file",
]


class Site:
    """An output folder ``out`` and, outside it, a victim folder and a victim file."""

    def __init__(self, root: Path) -> None:
        self.out = root / "out"
        self.victim = root / "victim"
        self.victim_file = root / "victim2" / "important.txt"
        self.out.mkdir()
        self.victim.mkdir()
        (self.victim / "keep.txt").write_text(PRECIOUS)
        self.victim_file.parent.mkdir()
        self.victim_file.write_text(PRECIOUS)
        (self.out / "sub").symlink_to(self.victim_file.parent, target_is_directory=True)
        age(self.victim)

    def untouched(self) -> bool:
        """Whether both victims are as they were."""
        return (
            (self.victim / "keep.txt").read_text() == PRECIOUS
            and self.victim_file.is_file()
            and not self.victim_file.is_symlink()
            and self.victim_file.read_text() == PRECIOUS
        )

    def plant(self, case: str) -> Path:
        """Plant the attack ``case`` (one of :data:`ISSUE_CASES`) into ``out``: a staging folder
        holding an ``owner.lock`` that nobody holds and the files of the case. Relative paths
        assume ``out`` is the working folder."""
        staging = self.out / PLANTED
        payload = str(staging / "payload")
        victim = str(self.victim_file)
        files = {
            "primary is the absolute victim folder": {"primary": str(self.victim)},
            "primary is ../victim": {"primary": "../victim"},
            "journal target is an absolute path": {"journal.json": _old_journal(payload, victim)},
            "journal target climbs out with ..": {
                "journal.json": _old_journal(payload, f"{self.out}/../victim2/important.txt")
            },
            "journal target is relative with ..": {
                "journal.json": _old_journal(payload, "../victim2/important.txt")
            },
            "journal target is through a symlinked folder": {
                "journal.json": _old_journal(payload, f"{self.out}/sub/important.txt")
            },
            "journal staged entry is the victim file": {
                "journal.json": _old_journal(victim, f"{self.out}/stolen.txt")
            },
        }[case]
        staging.mkdir()
        (staging / atomic.OWNER_NAME).write_text("")
        (staging / "payload").write_text(ATTACKER)
        for name, text in files.items():
            (staging / name).write_text(text)
        age(staging)
        return staging


def age(path: Path) -> None:
    """Make ``path`` look two hours old (recovery's "abandoned")."""
    then = time.time() - 2 * 3600
    os.utime(path, (then, then), follow_symlinks=False)


def _old_journal(staged: str, target: str) -> str:
    """A journal in snca's format before the fix: (staged, target) paths as written."""
    return json.dumps({"pairs": [{"staged": staged, "target": target, "inode": 0}]})


def forge(
    folder: Path,
    names: list[str],
    primary: str | None = None,
    members: tuple[str, ...] = (),
    name: str = PLANTED,
) -> Path:
    """Plant into ``folder`` a staging folder with an owner token and a journal in the current
    format whose checksum verifies, publishing ``names`` (each staged as ``ATTACKER``)."""
    staging = folder / name
    staging.mkdir()
    (staging / atomic.OWNER_NAME).write_text("")
    token = secrets.token_hex(32)
    (staging / atomic.TOKEN_NAME).write_text(token)
    pairs = []
    for entry in names:
        staged = staging / entry
        if staged.parent == staging and entry not in ("", ".", ".."):
            staged.write_text(ATTACKER)
        pairs.append({"name": entry, "inode": 0})
    record = {
        "format": atomic.JOURNAL_FORMAT,
        "staging": staging.name,
        "pairs": pairs,
        "primary": primary,
        "members": list(members),
    }
    checksum = atomic._checksum(token, record)
    (staging / atomic.JOURNAL_NAME).write_text(json.dumps(dict(record, checksum=checksum)))
    age(staging)
    return staging
