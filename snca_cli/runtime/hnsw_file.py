"""The structure of an hnswlib graph file, checked before hnswlib reads it.

hnswlib trusts its files: a header field or a link that points elsewhere than it says makes
``load_index`` or the first search read or write outside its memory (a segfault, or a wrong
answer). A checksum only catches accidents, so :func:`check_graph_file` reads the whole
structure first, in numpy, and raises :class:`GraphFileError` unless it is exactly what hnswlib
0.8 (``HierarchicalNSW::saveIndex``) writes for the manifest's vectors and parameters.

The file, in native byte order without padding:

* the header (:data:`HEADER`): ``offsetLevel0_``, ``max_elements_``, ``cur_element_count``,
  ``size_data_per_element_``, ``label_offset_``, ``offsetData_`` (size_t each), ``maxlevel_``
  (int), ``enterpoint_node_`` (uint32), ``maxM_``, ``maxM0_``, ``M_`` (size_t), ``mult_``
  (double), ``ef_construction_`` (size_t);
* one block of ``size_data_per_element_`` bytes per element: its level-0 link list (a count
  word, whose third byte is the deleted mark, and ``maxM0_`` uint32 neighbour slots), its
  vector (``dim`` float32) and its label (uint64, the tile id);
* per element a uint32 byte size of its upper-level link lists, ``level * (maxM_ + 1) * 4``,
  followed by those lists (a count word and ``maxM_`` neighbour slots per level).

Besides each field against the file's size and the manifest, the check follows what a search
relies on: every link names an element that exists on that level, the entry point is on the
top level, which is the highest level of any element, and the labels are the tile ids, once
each.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

HEADER = struct.Struct("=6QiI3QdQ")
#: Bytes of a neighbour id or a link count (hnswlib's ``tableint``, ``linklistsizeint``).
WORD = 4
#: Bytes of a label (``labeltype``).
LABEL_BYTES = 8
#: ``enterpoint_node_`` of a graph without elements.
NO_ELEMENT = 0xFFFFFFFF
#: Link lists checked at once (bounds the memory of the check).
CHECK_LISTS = 1 << 16


class GraphFileError(ValueError):
    """What is wrong with a graph file, as a phrase about it ("it holds 2 vectors, ...")."""


@dataclass(frozen=True)
class GraphHeader:
    """The header fields of a graph file."""

    offset_level0: int
    max_elements: int
    count: int
    size_data_per_element: int
    label_offset: int
    offset_data: int
    max_level: int
    enterpoint: int
    max_m: int
    max_m0: int
    m: int
    mult: float
    ef_construction: int


def check_graph_file(
    handle: BinaryIO, dim: int, m: int, ef_construction: int, labels: range
) -> None:
    """Raise GraphFileError unless the open graph file holds exactly the elements labelled
    ``labels`` (tile ids), ``dim``-d, built with ``m`` and ``ef_construction``, every part
    where its header says (see the module's docstring). ``m`` is 2 or more."""
    size = os.fstat(handle.fileno()).st_size
    if size < HEADER.size:
        raise GraphFileError(f"it has {size} bytes, less than the {HEADER.size}-byte header")
    try:
        _check(np.memmap(handle, dtype=np.uint8, mode="r"), dim, m, ef_construction, labels)
    except GraphFileError as exc:
        problem = str(exc)
    else:
        return
    # a new error: the first one's frames keep the file mapped for as long as it lives
    raise GraphFileError(problem)


def _check(data: np.ndarray, dim: int, m: int, ef_construction: int, labels: range) -> None:
    header = GraphHeader(*HEADER.unpack_from(data))
    _check_header(header, dim, m, ef_construction, len(labels))
    count, element = header.count, header.size_data_per_element
    links_end = HEADER.size + count * element
    if len(data) < links_end + WORD * count:
        raise GraphFileError(
            f"it has {len(data)} bytes, too small for {count} elements of {element} bytes and "
            "their link lists"
        )
    words = np.frombuffer(data, "=u4", (len(data) - links_end) // WORD, links_end)
    levels, starts, used = _upper_lists(words, count, (m + 1) * WORD)
    if links_end + used * WORD != len(data):
        raise GraphFileError(
            f"it has {len(data) - links_end - used * WORD} bytes after its last link list"
        )
    for first in range(0, count, CHECK_LISTS):
        rows = min(CHECK_LISTS, count - first)
        lists = np.ndarray(
            (rows, 2 * m + 1), "=u4", data, HEADER.size + first * element, (element, WORD)
        )
        _check_lists(lists, np.arange(first, first + rows), np.zeros(rows, np.int64), levels)
    if count:
        stored = np.ndarray((count,), "=u8", data, HEADER.size + header.label_offset, (element,))
        _check_labels(stored, labels)
    top = int(levels.max()) if count else -1
    if header.max_level != top:
        raise GraphFileError(f"its top level is {header.max_level}, its elements reach level {top}")
    if count and levels[header.enterpoint] != top:
        raise GraphFileError(
            f"its entry point, element {header.enterpoint}, is on level "
            f"{levels[header.enterpoint]}, not on the top level {top}"
        )
    _check_upper_lists(words, levels, starts, m)


def _check_header(header: GraphHeader, dim: int, m: int, ef_construction: int, count: int) -> None:
    """The header fields against the manifest's count, dimension and parameters."""
    if header.offset_level0 != 0:
        raise GraphFileError(f"its level-0 offset is {header.offset_level0}, hnswlib writes 0")
    if header.count != count:
        raise GraphFileError(f"it holds {header.count} vectors, the manifest says {count}")
    if header.max_elements < count:
        raise GraphFileError(f"it has room for {header.max_elements} vectors but holds {count}")
    if (header.m, header.max_m, header.max_m0) != (m, m, 2 * m):
        raise GraphFileError(
            f"it was built with M={header.m} (at most {header.max_m} links per element, "
            f"{header.max_m0} on level 0), the manifest says M={m}"
        )
    if not math.isclose(header.mult, 1.0 / math.log(m), rel_tol=1e-9):
        raise GraphFileError(f"its level multiplier {header.mult} is not 1/ln(M) for M={m}")
    if header.ef_construction != max(ef_construction, m):  # hnswlib raises it to M
        raise GraphFileError(
            f"it was built with ef_construction={header.ef_construction}, the manifest says "
            f"{ef_construction} with M={m}"
        )
    links = (2 * m + 1) * WORD
    layout = (links + dim * 4 + LABEL_BYTES, links, links + dim * 4)
    found = (header.size_data_per_element, header.offset_data, header.label_offset)
    if found != layout:
        raise GraphFileError(
            f"its elements are laid out as {found[0]} bytes with the vector at {found[1]} and "
            f"the label at {found[2]}, {dim}-d vectors with M={m} take {layout[0]}, {layout[1]} "
            f"and {layout[2]}"
        )
    if count == 0 and (header.max_level, header.enterpoint) != (-1, NO_ELEMENT):
        raise GraphFileError(
            f"it holds no vector but has an entry point {header.enterpoint} on top level "
            f"{header.max_level}"
        )
    if count and header.enterpoint >= count:
        raise GraphFileError(
            f"its entry point {header.enterpoint} is not one of its {count} elements"
        )


def _upper_lists(
    words: np.ndarray, count: int, size_links: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Walk the upper-level link lists after the level-0 blocks (``words``): each element's
    level, the word where its lists start (-1 without), and the words used.

    Most elements have none (a zero size word each), so the walk jumps from one non-zero size
    word to the next rather than stepping through every element.
    """
    levels = np.zeros(count, np.int64)
    starts = np.full(count, -1, np.int64)
    nonzero = np.flatnonzero(words)
    element = word = 0
    while element < count:
        following = nonzero[np.searchsorted(nonzero, word) :][:1]
        empty = min((int(following[0]) if len(following) else len(words)) - word, count - element)
        element, word = element + empty, word + empty
        if element == count:
            break
        if word == len(words):
            raise GraphFileError(f"it ends before the link lists of element {element} of {count}")
        size = int(words[word])
        if size % size_links:
            raise GraphFileError(
                f"the upper link lists of element {element} take {size} bytes, not a multiple "
                f"of the {size_links} bytes of one level"
            )
        end = word + 1 + size // WORD
        if end > len(words):
            raise GraphFileError(
                f"the upper link lists of element {element} ({size} bytes) reach past the end "
                "of the file"
            )
        levels[element], starts[element] = size // size_links, word + 1
        element, word = element + 1, end
    return levels, starts, word


def _check_lists(
    lists: np.ndarray, owners: np.ndarray, list_levels: np.ndarray, levels: np.ndarray
) -> None:
    """Link lists (a count word, then neighbour slots; one row per list, of the element
    ``owners`` on level ``list_levels``): every count within the slots, no deleted mark,
    every neighbour an element on that level."""
    slots = lists.shape[1] - 1
    sizes = lists[:, 0]
    over = np.flatnonzero(sizes > slots)
    if len(over):
        row = over[0]
        owner, level, value = int(owners[row]), int(list_levels[row]), int(sizes[row])
        if value >> 16 and level == 0:
            raise GraphFileError(
                f"element {owner} is marked deleted (flags {value >> 16:#x}); snca never deletes"
            )
        raise GraphFileError(f"element {owner} has {value} links on level {level}, at most {slots}")
    used = np.arange(slots) < sizes[:, None]
    neighbours = lists[:, 1:]
    wrong = used & (neighbours >= len(levels))
    if wrong.any():
        row, slot = np.argwhere(wrong)[0]
        raise GraphFileError(
            f"element {owners[row]} links to element {neighbours[row, slot]} on level "
            f"{list_levels[row]}, beyond its {len(levels)} elements"
        )
    known = np.minimum(neighbours, max(len(levels) - 1, 0)).astype(np.int64)
    wrong = used & (levels[known] < list_levels[:, None])
    if wrong.any():
        row, slot = np.argwhere(wrong)[0]
        raise GraphFileError(
            f"element {owners[row]} links on level {list_levels[row]} to element "
            f"{neighbours[row, slot]}, which has no level {list_levels[row]}"
        )


def _check_upper_lists(words: np.ndarray, levels: np.ndarray, starts: np.ndarray, m: int) -> None:
    """The link lists of every element on each of its upper levels."""
    owners = np.flatnonzero(levels)
    per_owner = levels[owners]
    list_owners = np.repeat(owners, per_owner)
    list_levels = np.arange(len(list_owners)) - np.repeat(
        np.cumsum(per_owner) - per_owner, per_owner
    )
    list_levels += 1
    list_starts = np.repeat(starts[owners], per_owner) + (list_levels - 1) * (m + 1)
    for first in range(0, len(list_owners), CHECK_LISTS):
        part = slice(first, first + CHECK_LISTS)
        lists = words[list_starts[part, None] + np.arange(m + 1)]
        _check_lists(lists, list_owners[part], list_levels[part], levels)


def _check_labels(stored: np.ndarray, labels: range) -> None:
    """The elements' labels (one or more) are the tile ids ``labels``, once each."""
    low, high = int(stored.min()), int(stored.max())
    if low < labels.start or high >= labels.stop:
        raise GraphFileError(
            f"its labels run from {low} to {high}, not over the tile ids {labels.start} to "
            f"{labels.stop - 1}"
        )
    ids = (stored - labels.start).astype(np.int64)
    repeated = np.flatnonzero(np.bincount(ids, minlength=len(labels)) > 1)
    if len(repeated):
        raise GraphFileError(
            f"its labels repeat tile id {labels.start + int(repeated[0])}; each of the tile ids "
            f"{labels.start} to {labels.stop - 1} must be one element's"
        )
