"""Class colours that mean what the class is, chosen from its name: one rule for every output.

QGIS users read land-cover maps by colour before they read the legend: water blue, vegetation
green, built-up red, bare ground tan (the colour-coded classes of the Semi-Automatic
Classification plugin and of most land-cover products). :func:`class_colours` gives each class
of a model such a colour from the words of its name (``DenseResidential`` -> ``dense
residential``), matched against :data:`RULES`:

* water: blue shades (port and sea the darkest, then lake, river, pond the lightest);
* vegetation: greens (forest dark, meadow and grass light, farmland and crops yellow-green);
* sports fields and leisure: mint and pale greens, pinks;
* built-up: reds (residential, dense the darkest), crimson and pinks (commercial, centre,
  square), purples (church, school), slate greys (industry, transport, bridges);
* bare ground: sand, tan and browns (beach, desert, bare land, mountain, quarry);
* snow and ice: white-blue; clouds: near white.

Classes matched by no rule get well separated colours from :data:`FALLBACK_PALETTE`. A class
whose colour would be near one already given (two crops, or a rule colour near another's) gets
a lighter or darker shade of it, so no two classes of a model share a colour. ``unknown``
(:data:`~snca_cli.contract.open_set.UNKNOWN_CLASS`) is always :data:`UNKNOWN_COLOUR`, a neutral
grey no other class is given.

A model may carry its own colours (``class_colours`` in its metadata, e.g. edited after ``snca
adapt``): they are kept as they are (``unknown`` stays grey) and the other classes are chosen
around them.
"""

from __future__ import annotations

import colorsys
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from snca_cli.contract.open_set import UNKNOWN_CLASS
from snca_cli.errors import SncaError

#: The colour of ``unknown``: a neutral grey, never given to another class.
UNKNOWN_COLOUR = "#9e9e9e"
#: Shortest rule word looked for inside a one-word name (``sea`` is not looked for in ``seal``).
MIN_PART = 4
#: Two colours closer than this (CIE76 delta E in CIELAB) are taken for the same one.
MIN_DISTANCE = 10.0
#: Lightness steps (HLS) tried, in order, for a shade of a colour already given.
SHADE_STEPS = (-0.1, 0.1, -0.2, 0.2, -0.3, 0.3, 0.4)
#: Well separated colours for classes no rule matches (Kelly's list without greys, black and
#: white), taken in order, skipping those near a colour already given.
FALLBACK_PALETTE = (
    "#f3c300",
    "#875692",
    "#f38400",
    "#a1caf1",
    "#be0032",
    "#c2b280",
    "#008856",
    "#e68fac",
    "#0067a5",
    "#f99379",
    "#604e97",
    "#f6a600",
    "#b3446c",
    "#dcd300",
    "#882d17",
    "#8db600",
    "#654522",
    "#e25822",
    "#2b3d26",
)
#: Hue step (degrees) of the colours made once the fallback palette is used up.
GOLDEN_ANGLE = 137.508

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class ColourRule:
    """A class whose name holds every one of ``words`` is coloured ``colour``."""

    words: tuple[str, ...]
    colour: str
    family: str


def _rules(family: str, *entries: tuple[str, str]) -> tuple[ColourRule, ...]:
    """Rules of one family from ``("word [word ...]", colour)`` pairs."""
    return tuple(ColourRule(tuple(words.split()), colour, family) for words, colour in entries)


#: The rules, tried in order: the first whose words are all in a class name gives its colour
#: (so ``sea ice`` is ice, ``parking`` is not ``park`` and ``railway station`` is not
#: ``railway``).
RULES: tuple[ColourRule, ...] = (
    *_rules(
        "snow and ice",
        ("glacier", "#b9dcf0"),
        ("ice", "#d6ebf8"),
        ("iceberg", "#d6ebf8"),
        ("snowberg", "#e4f2fb"),
        ("snow", "#e4f2fb"),
        ("cloud", "#f4f4f4"),
    ),
    *_rules(
        "industry",
        ("power", "#4a3f5c"),
        ("storage", "#8a7f9e"),
        ("tank", "#8a7f9e"),
        ("industrial", "#5e4b6e"),
        ("industry", "#5e4b6e"),
        ("factory", "#5e4b6e"),
        ("warehouse", "#6f5f80"),
    ),
    *_rules(
        "residential",
        ("mobile home", "#e8665a"),
        ("dense residential", "#8e1414"),
        ("medium residential", "#d32f2f"),
        ("sparse residential", "#f28b82"),
        ("residential", "#c62828"),
        ("housing", "#c62828"),
        ("house", "#c62828"),
        ("building", "#b23434"),
        ("urban", "#a52a2a"),
    ),
    *_rules(
        "sports and leisure",
        ("baseball", "#a5d6a7"),
        ("playground", "#5fc7a8"),
        ("track", "#5fc7a8"),
        ("tennis", "#26a69a"),
        ("basketball", "#26a69a"),
        ("court", "#26a69a"),
        ("golf", "#7cc576"),
        ("football", "#8fd18c"),
        ("sport", "#8fd18c"),
        ("soccer", "#8fd18c"),
        ("stadium", "#e8743b"),
        ("resort", "#e57fa5"),
    ),
    *_rules(
        "transport",
        ("railway station", "#464152"),
        ("train station", "#464152"),
        ("station", "#464152"),
        ("airport", "#b7b3c9"),
        ("airfield", "#b7b3c9"),
        ("runway", "#c5c1d4"),
        ("airplane", "#d0cce0"),
        ("parking", "#6b7280"),
        ("railway", "#595959"),
        ("railroad", "#595959"),
        ("bridge", "#4e6e99"),
        ("viaduct", "#7b6f63"),
        ("overpass", "#7b6f63"),
        ("highway", "#787878"),
        ("freeway", "#787878"),
        ("motorway", "#787878"),
        ("road", "#787878"),
        ("street", "#787878"),
        ("intersection", "#828282"),
        ("roundabout", "#828282"),
    ),
    *_rules(
        "water",
        ("port", "#173f66"),
        ("harbour", "#173f66"),
        ("harbor", "#173f66"),
        ("sea", "#1f4e9c"),
        ("ocean", "#1f4e9c"),
        ("lake", "#2c7fb8"),
        ("reservoir", "#2c7fb8"),
        ("river", "#4a90d9"),
        ("stream", "#4a90d9"),
        ("canal", "#4a90d9"),
        ("pond", "#7fbbe8"),
        ("pool", "#7fbbe8"),
        ("water", "#2166ac"),
        ("wetland", "#4bb3a4"),
        ("marsh", "#4bb3a4"),
        ("swamp", "#4bb3a4"),
    ),
    *_rules(
        "built-up",
        ("commercial", "#c2185b"),
        ("business", "#c2185b"),
        ("retail", "#c2185b"),
        ("downtown", "#8e244d"),
        ("center", "#8e244d"),
        ("centre", "#8e244d"),
        ("square", "#d98c9c"),
        ("plaza", "#d98c9c"),
        ("church", "#6a1b9a"),
        ("temple", "#6a1b9a"),
        ("mosque", "#6a1b9a"),
        ("palace", "#8e5aa8"),
        ("school", "#ab47bc"),
        ("university", "#ab47bc"),
        ("hospital", "#ab47bc"),
    ),
    *_rules(
        "vegetation",
        ("park", "#4caf50"),
        ("garden", "#4caf50"),
        ("forest", "#1b6e34"),
        ("wood", "#1b6e34"),
        ("woodland", "#1b6e34"),
        ("tree", "#2e8b57"),
        ("orchard", "#2e8b57"),
        ("shrub", "#8d9f3a"),
        ("shrubland", "#8d9f3a"),
        ("chaparral", "#8d9f3a"),
        ("meadow", "#9ccc65"),
        ("grass", "#9ccc65"),
        ("grassland", "#9ccc65"),
        ("pasture", "#9ccc65"),
        ("herbaceous", "#9ccc65"),
        ("farmland", "#d4e157"),
        ("farm", "#d4e157"),
        ("crop", "#d4e157"),
        ("cropland", "#d4e157"),
        ("agriculture", "#d4e157"),
        ("agricultural", "#d4e157"),
        ("terrace", "#c0ca33"),
        ("field", "#d4e157"),
        ("vegetation", "#43a047"),
    ),
    *_rules(
        "bare ground",
        ("beach", "#f3dfa2"),
        ("coast", "#f3dfa2"),
        ("desert", "#e5c36f"),
        ("dune", "#e5c36f"),
        ("sand", "#e5c36f"),
        ("bare", "#c49a6c"),
        ("barren", "#c49a6c"),
        ("soil", "#c49a6c"),
        ("quarry", "#a0522d"),
        ("mine", "#a0522d"),
        ("mining", "#a0522d"),
        ("mountain", "#8b6b4a"),
        ("hill", "#8b6b4a"),
        ("rock", "#8b6b4a"),
    ),
)


def class_words(name: str) -> list[str]:
    """The lower-case words of a class name: CamelCase, ``_``, ``-``, spaces and digits split
    (``DenseResidential`` and ``dense_residential`` are ``["dense", "residential"]``)."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return [word.lower() for word in re.split(r"[^A-Za-z]+", spaced) if word]


def _has_word(words: Sequence[str], word: str) -> bool:
    """Whether ``word`` (or its plural) is one of ``words``."""
    return any(w in (word, f"{word}s", f"{word}es") for w in words)


def matching_rule(name: str) -> ColourRule | None:
    """The first rule of :data:`RULES` for a class name, or None.

    Words are matched whole (plurals too); a name written as one lower-case word
    (``denseresidential``, ``parkinglot``) is matched by the rule words it contains.
    """
    words = class_words(name)
    for rule in RULES:
        if all(_has_word(words, word) for word in rule.words):
            return rule
    joined = "".join(words)
    for rule in RULES:
        if all(len(word) >= MIN_PART and word in joined for word in rule.words):
            return rule
    return None


def check_colour(colour: str, what: str = "colour") -> str:
    """``colour`` as lower-case ``#rrggbb``; SncaError unless it is one."""
    if not isinstance(colour, str) or not _HEX.match(colour):
        raise SncaError(f"{what} {colour!r} is not a #rrggbb colour")
    return colour.lower()


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as (red, green, blue), 0-255."""
    value = int(check_colour(colour)[1:], 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def _lab(colour: str) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in hex_rgb(colour))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def colour_distance(a: str, b: str) -> float:
    """How far apart two colours look: CIE76 delta E (about 2.3 is just noticeable)."""
    return math.dist(_lab(a), _lab(b))


def _free(colour: str, used: Sequence[str]) -> bool:
    return all(colour_distance(colour, other) >= MIN_DISTANCE for other in used)


def _shades(colour: str) -> list[str]:
    """``colour`` then lighter and darker shades of it (:data:`SHADE_STEPS`)."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(c / 255.0 for c in hex_rgb(colour)))
    shades = [colour]
    for step in SHADE_STEPS:
        shifted = min(max(lightness + step, 0.12), 0.93)
        shades.append(_hex(colorsys.hls_to_rgb(hue, shifted, saturation)))
    return shades


def _generated(count: int) -> str:
    """The ``count``-th colour past the fallback palette: golden-angle hues, alternating
    lightness."""
    hue = (count * GOLDEN_ANGLE % 360.0) / 360.0
    lightness = (0.45, 0.6, 0.35)[count % 3]
    return _hex(colorsys.hls_to_rgb(hue, lightness, 0.65))


def _first_free(candidates: Sequence[str], used: Sequence[str]) -> str | None:
    return next((c for c in candidates if _free(c, used)), None)


def class_colours(
    class_names: Sequence[str], chosen: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A ``#rrggbb`` colour for every class, in ``class_names`` order.

    ``chosen`` colours (a model's ``class_colours``) are kept as given; ``unknown`` is always
    :data:`UNKNOWN_COLOUR`; the other classes take the colour of their rule
    (:func:`matching_rule`) or a shade of it, then the unmatched ones the fallback palette,
    every colour at least :data:`MIN_DISTANCE` from those given before it.
    """
    chosen = {
        name: check_colour(c, f"the colour of {name!r}") for name, c in (chosen or {}).items()
    }
    colours: dict[str, str] = {UNKNOWN_CLASS: UNKNOWN_COLOUR}
    colours.update({n: chosen[n] for n in class_names if n in chosen and n != UNKNOWN_CLASS})
    unmatched = []
    for name in class_names:
        if name in colours:
            continue
        rule = matching_rule(name)
        if rule is None:
            unmatched.append(name)
            continue
        used = list(colours.values())
        colours[name] = _first_free(_shades(rule.colour), used) or _fallback(used)
    for name in unmatched:
        colours[name] = _fallback(list(colours.values()))
    return {name: colours[name] for name in class_names}


def _fallback(used: Sequence[str]) -> str:
    """The first fallback colour far from every used one (made past the palette)."""
    colour = _first_free(FALLBACK_PALETTE, used)
    count = 0
    while colour is None:
        candidate = _generated(count)
        count += 1
        if candidate not in used and (_free(candidate, used) or count > 1000):
            colour = candidate
    return colour
