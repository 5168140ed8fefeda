"""The one rule that turns a string from data (a class value, a raster name) into a file name
(snca_cli.runtime.safe_names): a single visible component of bounded length, never a path, and
distinct from the names already given, ignoring case."""

from __future__ import annotations

import re
import unicodedata

import pytest

from snca_cli.runtime.safe_names import MAX_BYTES, PLACEHOLDER, safe_component, safe_names

HASHED = re.compile(r"-[0-9a-f]{8}$")


@pytest.mark.parametrize("text", ["forest", "Deep water", "日本語の森", "a-b_c.d", "2021 (v2)"])
def test_a_safe_name_is_kept(text: str) -> None:
    assert safe_component(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ("/abs/dir", "_abs_dir"),
        ("\t", "_"),
        ("../../X", "_.._X"),
        ("a\0b", "a_b"),
        ("tab\there\n", "tab_here_"),
        ("a:b?*", "a_b__"),
        ('<i>|"q"', "_i___q_"),
        (".hidden", "hidden"),
        ("  .. padded . ", "padded"),
        ("zero\u200bwidth", "zero_width"),
        ("lone\udcffsurrogate", "lone_surrogate"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1", "_com1"),
        ("console", "console"),
    ],
)
def test_separators_controls_and_reserved_names_are_replaced(text: str, expected: str) -> None:
    assert safe_component(text) == expected


@pytest.mark.parametrize("text", ["", ".", "..", "...", " ", " . ", ". .. ."])
def test_empty_and_dot_names_become_the_placeholder(text: str) -> None:
    assert safe_component(text) == PLACEHOLDER


def test_names_are_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Forêt")
    assert safe_component(nfd) == unicodedata.normalize("NFC", "Forêt") != nfd


@pytest.mark.parametrize("text", ["x" * 300, "é" * 150, "森" * 100, "a" * 119 + "é" * 5])
def test_long_names_are_cut_with_a_hash_of_the_whole(text: str) -> None:
    name = safe_component(text)
    assert len(name.encode("utf-8")) <= MAX_BYTES < 255
    assert HASHED.search(name) and text.startswith(name[:-9])
    assert safe_component(text) == name  # stable
    assert safe_component(text + "!") != name


def test_used_names_are_told_apart_ignoring_case_and_normalisation() -> None:
    used: set[str] = set()
    first = [safe_component(t, used) for t in ["Water", "water", "WATER", "a/b", "a_b"]]
    assert first[0] == "Water" and first[3] == "a_b"
    assert all(HASHED.search(name) for name in (first[1], first[2], first[4]))
    assert len({name.casefold() for name in first}) == 5
    again: set[str] = set()
    assert [safe_component(t, again) for t in ["Water", "water", "WATER", "a/b", "a_b"]] == first
    used = set()
    nfc, nfd = (unicodedata.normalize(form, "Forêt") for form in ("NFC", "NFD"))
    assert safe_component(nfc, used) == nfc and safe_component(nfd, used).startswith(f"{nfc}-")


def test_safe_names_keep_safe_names_and_tell_repeats_apart() -> None:
    assert safe_names(["a/b", "a_b"]) == [safe_component("a/b", {"a_b"}), "a_b"]
    assert safe_names(["a/b", "a_b"])[0].startswith("a_b-")
    scenes = safe_names(["scene", "scene", "scene"])
    assert scenes[0] == "scene" and len({s.casefold() for s in scenes}) == 3
    assert safe_names(["scene", "scene", "scene"]) == scenes  # stable
    assert safe_names(["chips.json", "x"], reserved=["CHIPS.json"])[0].startswith("chips.json-")
    assert safe_names(["..", ".", ""]) == [PLACEHOLDER, *safe_names(["..", ".", ""])[1:]]
    assert len(set(safe_names(["..", ".", ""]))) == 3
