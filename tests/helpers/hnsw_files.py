"""Crafting hnswlib graph files for the hostile-input tests: the header fields of
``HierarchicalNSW::saveIndex`` (hnswlib 0.8) and where each element's links and label lie.

The file is the header (:data:`HEADER`, fields :data:`FIELDS`), then one block of
``size_data_per_element`` bytes per element (its level-0 link list: a count word and
``max_m0`` neighbour ids; its vector; its label), then per element a uint32 byte size of its
upper-level link lists (``size_links * level``) followed by those lists (a count word and
``max_m`` neighbour ids per level).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("=6QiI3QdQ")
FIELDS = (
    "offset_level0",
    "max_elements",
    "count",
    "size_data_per_element",
    "label_offset",
    "offset_data",
    "max_level",
    "enterpoint",
    "max_m",
    "max_m0",
    "m",
    "mult",
    "ef_construction",
)
WORD = struct.Struct("=I")


@dataclass
class GraphLayout:
    """Where the parts of a graph file lie: its header and, per element, its level and the
    byte offset of its upper-level lists (-1 when it has none)."""

    header: dict[str, float]
    levels: list[int]
    upper: list[int]

    def level0(self, element: int) -> int:
        """Byte offset of an element's level-0 link list (its count word)."""
        return HEADER.size + element * int(self.header["size_data_per_element"])

    def label(self, element: int) -> int:
        """Byte offset of an element's label (uint64)."""
        return self.level0(element) + int(self.header["label_offset"])

    def upper_list(self, element: int, level: int) -> int:
        """Byte offset of an element's link list on ``level`` (1 or more; its count word)."""
        return self.upper[element] + (level - 1) * (int(self.header["max_m"]) + 1) * 4


def layout(path: Path) -> GraphLayout:
    """The layout of a well-formed graph file."""
    data = path.read_bytes()
    header = dict(zip(FIELDS, HEADER.unpack_from(data), strict=True))
    count, size = int(header["count"]), int(header["size_data_per_element"])
    size_links = (int(header["max_m"]) + 1) * 4
    position = HEADER.size + count * size
    levels, upper = [], []
    for _ in range(count):
        (links,) = WORD.unpack_from(data, position)
        levels.append(links // size_links)
        upper.append(position + 4 if links else -1)
        position += 4 + links
    return GraphLayout(header, levels, upper)


def set_field(path: Path, field: str, value: float) -> None:
    """Overwrite one header field of a graph file."""
    data = bytearray(path.read_bytes())
    values = list(HEADER.unpack_from(data))
    values[FIELDS.index(field)] = value
    HEADER.pack_into(data, 0, *values)
    path.write_bytes(bytes(data))


def put(path: Path, offset: int, fmt: str, value: int) -> None:
    """Overwrite the ``struct`` value ``fmt`` at ``offset`` of a file."""
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))
