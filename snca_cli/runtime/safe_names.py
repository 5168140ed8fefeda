"""Names from data are never paths: the one rule that turns a string read from data (a label's
class value, a raster's name) into a file or folder name.

:func:`safe_component` gives a single path component, the same on every system, that

* is NFC-normalised (the form macOS and Windows users type and most tools write);
* holds no path separator (``/``, ``\\``), no NUL or other control or invisible format
  character, and none of the characters Windows refuses (``<>:"|?*``): each becomes ``_``;
* starts and ends with neither a dot nor a space (no hidden folder, no ``.``/``..``, nothing
  Windows trims), and is not a Windows device name (``CON``, ``NUL``, ``COM1``... get a leading
  ``_``); a name left empty becomes :data:`PLACEHOLDER`;
* is at most :data:`MAX_BYTES` bytes of UTF-8 (well under the 255 of common file systems, so a
  suffix such as ``_r12_c34.tif`` still fits): a longer one is cut and ends with ``-`` and a
  short hash of the whole text, so two long names that share a beginning stay apart;
* differs from the names already given (``used``) ignoring case and Unicode normalisation (two
  names that one file system tells apart may be one file on another): a taken name gets ``-``
  and a short hash of the text, stable from run to run.

:func:`safe_names` applies it to a list, letting values that are already safe names keep them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

#: The longest name given, in bytes of UTF-8.
MAX_BYTES = 120
#: The name of a text that leaves nothing (empty, blank, ``.``, ``..``).
PLACEHOLDER = "unnamed"
#: Characters replaced besides the control, format and surrogate ones.
_REPLACED = re.compile(r'[/\\<>:"|?*]')
#: Unicode categories replaced: controls (NUL, tab, newline...), invisible format characters,
#: lone surrogates (undecodable bytes of a file name), line and paragraph separators.
_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Names Windows keeps for devices, whatever the extension.
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10)}
)
#: ``-`` and 8 hex digits.
_SUFFIX_BYTES = 9


def name_key(name: str) -> str:
    """The form in which two names are the same file on some file system (case-folded, NFC)."""
    return unicodedata.normalize("NFC", name.casefold())


def _digest(text: str) -> str:
    """A short stable hash of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def _cut(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of UTF-8 on a character boundary."""
    return name.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _cleaned(text: str) -> str:
    """``text`` as a single safe component, before the length and uniqueness rules."""
    name = _REPLACED.sub("_", unicodedata.normalize("NFC", text))
    name = "".join("_" if unicodedata.category(c) in _CATEGORIES else c for c in name)
    name = name.strip(" .")
    if not name:
        return PLACEHOLDER
    if name.split(".", 1)[0].rstrip(" ").upper() in _DEVICES:
        name = f"_{name}"
    return name


def safe_component(text: str, used: set[str] | None = None) -> str:
    """A safe file or folder name for ``text`` (see the module docstring).

    ``used`` holds the :func:`name_key` of the names given so far: the name returned differs
    from them, and its key is added.
    """
    cleaned = _cleaned(text)
    base = _cut(cleaned, MAX_BYTES - _SUFFIX_BYTES).rstrip(" .")
    fits = len(cleaned.encode("utf-8")) <= MAX_BYTES
    name = cleaned if fits else f"{base}-{_digest(text)}"
    if used is None:
        return name
    salt = text
    while name_key(name) in used:  # taken: the hash of the text, salted if the text repeats
        name = f"{base}-{_digest(salt)}"
        salt = f"{salt}\0"
    used.add(name_key(name))
    return name


def safe_names(texts: Sequence[str], reserved: Iterable[str] = ()) -> list[str]:
    """Distinct safe names for ``texts``, in their order, none equal to a ``reserved`` name.

    A text that is already a safe name keeps it when no earlier such text took it; the others
    are given theirs after, in order, so a value never loses its own name to one that only
    looks like it (``a_b`` stays ``a_b``, ``a/b`` becomes ``a_b-<hash>``).
    """
    used = {name_key(name) for name in reserved}
    names: list[str] = [""] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: (safe_component(texts[i]) != texts[i], i))
    for i in order:
        names[i] = safe_component(texts[i], used)
    return names
