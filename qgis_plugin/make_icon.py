"""Draw the plugin icon (``snca_qgis/icon.png``): a 3 x 3 grid of tiles in their classes'
colours (:mod:`snca_cli.contract.class_colours`), the query tile outlined and the tiles most
similar to it marked with a dot.

Run ``python qgis_plugin/make_icon.py`` after changing the class colours; the PNG is committed.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from snca_cli.contract.class_colours import class_colours, hex_rgb

ICON_SIZE = 64
GRID = 3
#: class of each cell, row by row; cells 0, 4 (the query) and 8 share a class
CELL_CLASSES = (
    "Forest",
    "River",
    "Farmland",
    "DenseResidential",
    "Forest",
    "River",
    "Farmland",
    "DenseResidential",
    "Forest",
)
QUERY_CELL = 4


def draw_icon(size: int = ICON_SIZE) -> Image.Image:
    """The icon as an RGBA image of ``size`` x ``size`` pixels."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    margin = size // 16
    cell = (size - 2 * margin) // GRID
    colours = class_colours(sorted(set(CELL_CLASSES)))
    for index, name in enumerate(CELL_CLASSES):
        row, col = divmod(index, GRID)
        x0, y0 = margin + col * cell, margin + row * cell
        box = (x0 + 1, y0 + 1, x0 + cell - 2, y0 + cell - 2)
        draw.rectangle(box, fill=hex_rgb(colours[name]) + (255,))
        if name == CELL_CLASSES[QUERY_CELL] and index != QUERY_CELL:
            r = cell // 6
            cx, cy = x0 + cell // 2, y0 + cell // 2
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255, 255))
    row, col = divmod(QUERY_CELL, GRID)
    x0, y0 = margin + col * cell, margin + row * cell
    width = max(2, size // 20)
    draw.rectangle((x0 - 1, y0 - 1, x0 + cell, y0 + cell), outline=(20, 20, 20, 255), width=width)
    return image


def main() -> None:
    target = Path(__file__).resolve().parent / "snca_qgis" / "icon.png"
    draw_icon().save(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
