"""Class colours from class names: every AID class matched, families by meaning, unknown grey, no
two classes alike."""

from __future__ import annotations

import colorsys
import itertools
import json
from pathlib import Path

import pytest

import snca_cli
from snca_cli.contract.class_colours import (
    FALLBACK_PALETTE,
    MIN_DISTANCE,
    UNKNOWN_COLOUR,
    class_colours,
    class_words,
    colour_distance,
    hex_rgb,
    matching_rule,
)
from snca_cli.contract.open_set import UNKNOWN_CLASS
from snca_cli.errors import SncaError

MODELS = Path(snca_cli.__file__).parent / "models"
#: Class names of other scene datasets (EuroSAT, UC Merced, NWPU-RESISC45), as they are written.
OTHER_DATASETS = [
    ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture"]
    + ["PermanentCrop", "Residential", "River", "SeaLake"],
    ["agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral"]
    + ["denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection"]
    + ["mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway"]
    + ["sparseresidential", "storagetanks", "tenniscourt"],
    ["circular_farmland", "sea_ice", "snowberg", "terrace", "thermal_power_station", "wetland"]
    + ["basketball_court", "ground_track_field", "commercial_area", "railway_station"],
]


def shipped_class_names() -> list[str]:
    (card,) = MODELS.glob("*.card.json")
    return json.loads(card.read_text())["model"]["class_names"]


def hls(colour: str) -> tuple[float, float, float]:
    """Hue in degrees, lightness and saturation (0-1)."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(c / 255 for c in hex_rgb(colour)))
    return hue * 360, lightness, saturation


def assert_all_distinct(colours: dict[str, str]) -> None:
    for (a, colour_a), (b, colour_b) in itertools.combinations(colours.items(), 2):
        assert colour_distance(colour_a, colour_b) >= MIN_DISTANCE, (a, colour_a, b, colour_b)


def test_every_class_of_the_shipped_model_is_matched_by_a_keyword() -> None:
    names = shipped_class_names()
    assert len(names) == 30
    unmatched = [name for name in names if matching_rule(name) is None]
    assert unmatched == []
    colours = class_colours(names + [UNKNOWN_CLASS])
    assert list(colours) == names + [UNKNOWN_CLASS]
    assert_all_distinct(colours)
    # each class takes its rule's own colour: no AID class needed a shade to stay apart
    assert all(colours[name] == matching_rule(name).colour for name in names)


@pytest.mark.parametrize(
    ("names", "family", "hues"),
    [
        (["Sea", "Lake", "River", "Pond", "Port", "Harbour", "water"], "water", (195, 225)),
        (["Forest", "Meadow", "Park", "Grassland", "trees"], "vegetation", (85, 150)),
        (["Farmland", "AnnualCrop"], "vegetation", (60, 75)),
        (["DenseResidential", "Residential", "SparseResidential"], "residential", (350, 370)),
        (["Desert", "Beach", "BareLand", "Mountain", "Quarry"], "bare ground", (15, 50)),
    ],
)
def test_families_have_the_colours_their_names_suggest(
    names: list[str], family: str, hues: tuple[float, float]
) -> None:
    colours = class_colours(names)
    for name in names:
        assert matching_rule(name).family == family, name
        hue = hls(colours[name])[0]
        low, high = hues
        assert low <= hue <= high or low <= hue + 360 <= high, (name, colours[name], hue)
    assert_all_distinct(colours)


def test_dense_is_darker_than_sparse_and_snow_is_white_blue() -> None:
    colours = class_colours(["SparseResidential", "MediumResidential", "DenseResidential"])
    lightness = [hls(colours[n])[1] for n in colours]
    assert lightness == sorted(lightness, reverse=True)
    snow = hls(class_colours(["Snow"])["Snow"])
    assert snow[1] > 0.85 and 180 <= snow[0] <= 230
    road, railway = class_colours(["Road", "Railway"]).values()
    assert all(hls(c)[2] < 0.05 for c in (road, railway))  # greys


def test_the_sea_is_blue_and_unknown_grey_in_an_adapted_model() -> None:
    colours = class_colours(["forest", "sea", "town", UNKNOWN_CLASS])
    assert hls(colours["sea"])[0] == pytest.approx(219, abs=10)
    assert colours[UNKNOWN_CLASS] == UNKNOWN_COLOUR
    assert colours["town"] == FALLBACK_PALETTE[0]  # matched by no rule


def test_unknown_is_grey_and_no_other_class_gets_it() -> None:
    names = ["Parking", "Road", "Intersection", "Railway", "Airport", "Roundabout", "Highway"]
    colours = class_colours(names + [UNKNOWN_CLASS])
    assert colours[UNKNOWN_CLASS] == UNKNOWN_COLOUR
    assert_all_distinct(colours)
    # unknown keeps its grey even where a model does not write it
    assert all(
        colour_distance(c, UNKNOWN_COLOUR) >= MIN_DISTANCE for c in class_colours(names).values()
    )


def test_classes_of_one_rule_get_distinct_shades() -> None:
    names = ["AnnualCrop", "PermanentCrop", "crop", "Cropland"]
    colours = class_colours(names)
    assert len(set(colours.values())) == 4
    assert_all_distinct(colours)
    assert colours["AnnualCrop"] == matching_rule("AnnualCrop").colour
    assert all(matching_rule(n).family == "vegetation" for n in names)


def test_unmatched_classes_take_distinct_fallback_colours_past_the_palette() -> None:
    names = [f"class{i}" for i in range(40)]
    assert all(matching_rule(n) is None for n in names)
    colours = class_colours(names + [UNKNOWN_CLASS])
    assert len(set(colours.values())) == 41
    assert [colours[n] for n in names[:3]] == list(FALLBACK_PALETTE[:3])
    # a fallback colour near one already given is skipped
    near_yellow = class_colours(["thing", "other"], {"thing": "#f0c408"})
    assert near_yellow["other"] == FALLBACK_PALETTE[1]


def test_every_class_of_other_datasets_is_matched_and_distinct() -> None:
    for names in OTHER_DATASETS:
        assert [n for n in names if matching_rule(n) is None] == []
        assert_all_distinct(class_colours(names + [UNKNOWN_CLASS]))


@pytest.mark.parametrize(
    ("name", "words", "family"),
    [
        ("DenseResidential", ["dense", "residential"], "residential"),
        ("dense_residential", ["dense", "residential"], "residential"),
        ("denseresidential", ["denseresidential"], "residential"),
        ("RailwayStation", ["railway", "station"], "transport"),
        ("Railway", ["railway"], "transport"),
        ("parkinglot", ["parkinglot"], "transport"),
        ("Parking", ["parking"], "transport"),
        ("Park", ["park"], "vegetation"),
        ("StorageTanks", ["storage", "tanks"], "industry"),
        ("SeaIce", ["sea", "ice"], "snow and ice"),
        ("HTMLPage", ["html", "page"], None),
        ("Office", ["office"], None),  # "ice" is too short to be looked for inside a word
    ],
)
def test_names_are_split_into_words_and_matched(
    name: str, words: list[str], family: str | None
) -> None:
    assert class_words(name) == words
    rule = matching_rule(name)
    assert (rule.family if rule else None) == family


def test_chosen_colours_are_kept_and_the_others_chosen_around_them() -> None:
    colours = class_colours(["Forest", "River"], {"River": "#1B6E34"})
    assert colours["River"] == "#1b6e34"  # the model's own, lower-cased
    assert colours["Forest"] != "#1b6e34"  # a shade of forest green instead
    assert matching_rule("Forest").family == "vegetation"
    with pytest.raises(SncaError, match="not a #rrggbb colour"):
        class_colours(["Forest"], {"Forest": "green"})
