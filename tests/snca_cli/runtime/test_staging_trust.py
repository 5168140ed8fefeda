"""Recovery trusts only the staging folders snca wrote: a planted ``.snca-staging-*`` folder (a
``primary`` pointer, a journal naming absolute, ``..`` or symlinked paths, a forged journal with
a valid checksum, a folder of another user) never makes it delete or replace anything outside
that folder; it is left alone and reported in one line. Legitimate recovery of a set of outputs
spread over two folders still completes it (all old or all new) wherever it was killed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from snca_cli.runtime import atomic
from snca_cli.runtime.atomic import STAGING_PREFIX, OutputSet, recover_outputs
from tests.helpers.staging_attacks import (
    ATTACKER,
    ISSUE_CASES,
    PLANTED,
    PRECIOUS,
    Site,
    age,
    forge,
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    """The site, with its output folder as the working folder (``../victim`` is the victim)."""
    site = Site(tmp_path)
    monkeypatch.chdir(site.out)
    return site


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _assert_left_alone_and_reported(caplog: pytest.LogCaptureFixture, staging: Path) -> None:
    assert staging.is_symlink() or staging.is_dir(), "the planted folder is left alone"
    lines = [line for line in _warnings(caplog) if str(staging) in line]
    assert len(lines) == 1, _warnings(caplog)
    assert "\n" not in lines[0] and "left" in lines[0] and "alone" in lines[0]


@pytest.mark.parametrize("case", ISSUE_CASES)
def test_the_issues_planted_folders_touch_nothing_outside(
    site: Site, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    staging = site.plant(case)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    recover_outputs(site.out)  # a second writer into the folder: still one line
    assert site.untouched()
    assert not (site.out / "stolen.txt").exists()
    _assert_left_alone_and_reported(caplog, staging)


@pytest.mark.parametrize(
    "names",
    [
        ["VICTIM"],  # the victim file's absolute path
        ["../victim2/important.txt"],
        ["sub/important.txt"],  # out/sub is a symlink to the victim's folder
        [".."],
        ["a.txt", "link"],  # out/link is a symlink to the victim file
        ["a.txt", "staged-link"],  # the staged entry is a symlink to the victim file
    ],
)
def test_a_forged_journal_with_a_valid_checksum_acts_only_inside_its_folder(
    site: Site, names: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    (site.out / "a.txt").write_text(PRECIOUS)
    (site.out / "link").symlink_to(site.victim_file)
    names = [str(site.victim_file) if n == "VICTIM" else n for n in names]
    staging = forge(site.out, names)
    if "staged-link" in names:
        (staging / "staged-link").unlink()
        (staging / "staged-link").symlink_to(site.victim_file)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert site.untouched()
    assert (site.out / "a.txt").read_text() == PRECIOUS, "nothing of the folder was published"
    assert (site.out / "link").resolve() == site.victim_file.resolve()
    assert not (site.out / "staged-link").exists()
    _assert_left_alone_and_reported(caplog, staging)


@pytest.mark.parametrize("pointer", ["victim", "../victim", "victim-staging"])
def test_a_forged_pointer_to_another_folder_is_not_followed(
    site: Site, pointer: str, caplog: pytest.LogCaptureFixture
) -> None:
    if pointer == "victim":
        pointer = str(site.victim)
    elif pointer == "victim-staging":  # a staging-named folder outside that holds the victim
        victim = site.victim.parent / f"{STAGING_PREFIX}bbbbbbbbbbbb"
        shutil.copytree(site.victim, victim)
        age(victim)
        pointer = str(victim)
    staging = forge(site.out, [], primary=pointer)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert site.untouched()
    if pointer.endswith("bbbbbbbbbbbb"):
        assert (Path(pointer) / "keep.txt").read_text() == PRECIOUS
    _assert_left_alone_and_reported(caplog, staging)


@pytest.mark.parametrize("member", ["victim", "../victim", "victim-staging"])
def test_a_forged_member_list_is_not_followed(
    site: Site, member: str, caplog: pytest.LogCaptureFixture
) -> None:
    victim = site.victim.parent / f"{STAGING_PREFIX}bbbbbbbbbbbb"
    (site.out / "a.txt").write_text(PRECIOUS)
    if member == "victim-staging":  # a staging-named folder outside that holds the victim
        shutil.copytree(site.victim, victim)
        (victim / atomic.OWNER_NAME).write_text("")
        age(victim)
    members = {"victim": str(site.victim), "victim-staging": str(victim)}.get(member, member)
    staging = forge(site.out, ["a.txt"], members=(members,))
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert site.untouched() and (site.out / "a.txt").read_text() == PRECIOUS
    if victim.exists():
        assert (victim / "keep.txt").read_text() == PRECIOUS
    _assert_left_alone_and_reported(caplog, staging)


def test_an_owner_lock_that_is_a_symlink_is_not_opened(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    staging = site.out / PLANTED
    staging.mkdir()
    (staging / atomic.OWNER_NAME).symlink_to(site.victim_file)  # the lock would truncate it
    age(staging)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert site.untouched()
    _assert_left_alone_and_reported(caplog, staging)


def test_an_edited_journal_does_not_match_its_checksum(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    (site.out / "a.txt").write_text(PRECIOUS)
    staging = forge(site.out, ["b.txt"])
    journal = staging / atomic.JOURNAL_NAME
    journal.write_text(journal.read_text().replace('"b.txt"', '"a.txt"'))
    (staging / "a.txt").write_text(ATTACKER)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert (site.out / "a.txt").read_text() == PRECIOUS
    _assert_left_alone_and_reported(caplog, staging)


def test_a_staging_folder_that_is_a_symlink_is_not_followed(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    (site.out / "a.txt").write_text(PRECIOUS)
    outside = forge(site.victim, ["a.txt"])  # a valid journal, but in the victim's folder
    staging = site.out / f"{STAGING_PREFIX}cccccccccccc"
    staging.symlink_to(outside, target_is_directory=True)
    age(staging)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert (site.out / "a.txt").read_text() == PRECIOUS
    assert (outside / "a.txt").read_text() == ATTACKER and site.untouched()
    _assert_left_alone_and_reported(caplog, staging)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root (chown)")
def test_a_staging_folder_of_another_user_is_left_alone(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    (site.out / "a.txt").write_text(PRECIOUS)
    staging = forge(site.out, ["a.txt"])  # a valid journal: only its owner is wrong
    for path in [staging, *staging.iterdir()]:
        os.chown(path, 4242, 4242, follow_symlinks=False)
    caplog.set_level(logging.WARNING)
    recover_outputs(site.out)
    assert (site.out / "a.txt").read_text() == PRECIOUS
    _assert_left_alone_and_reported(caplog, staging)
    assert "4242" in _warnings(caplog)[0]


# -- legitimate recovery still works ---------------------------------------------------------------


class _Killed(BaseException):
    """The writer "dies" here (its locks are dropped, nothing else runs)."""


def _killed_writer(targets: list[Path], at: int, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Write "new" into ``targets`` as one set, dying at the ``at``-th file operation of its
    commit; whether it died."""
    count = 0

    def fault() -> None:
        nonlocal count
        count += 1
        if count == at:
            raise _Killed

    outputs = OutputSet(targets, force=True)
    for target in targets:
        outputs.path(target).write_text("new")
    with monkeypatch.context() as patch:
        patch.setattr(atomic, "fault_point", fault)
        try:
            outputs.commit()
        except _Killed:
            for staging in outputs._staging.values():  # the OS drops a dead process's locks
                staging.lock.release()
            return True
    return False


@pytest.mark.parametrize("first", ["a", "b"])
def test_a_set_over_two_folders_killed_anywhere_is_recovered_whole(
    tmp_path: Path, first: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    targets = [tmp_path / "a" / "one.txt", tmp_path / "b" / "two.txt"]  # a holds the journal
    caplog.set_level(logging.WARNING)
    outcomes = []
    for at in range(1, 40):
        for target in targets:
            target.parent.mkdir(exist_ok=True)
            target.write_text("old")
        killed = _killed_writer(targets, at, monkeypatch)
        assert all(t.read_text() in ("old", "new") for t in targets)
        recover_outputs(tmp_path / first)  # the next writer into one of the folders
        after = {t.read_text() for t in targets}
        assert after in ({"old"}, {"new"}), (at, after)
        recover_outputs(tmp_path / "a")
        recover_outputs(tmp_path / "b")
        assert not list(tmp_path.glob(f"*/{STAGING_PREFIX}*")), at
        assert {t.read_text() for t in targets} == after
        outcomes.append(after.pop())
        if not killed:
            break
    assert outcomes[0] == "old" and outcomes[-1] == "new" and len(outcomes) >= 5, outcomes
    assert not _warnings(caplog)


def test_a_committed_journal_is_signed_and_names_only_files_of_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = [tmp_path / "a" / "one.txt", tmp_path / "b" / "two.txt"]
    journals = []

    def keep(staging: Path, pairs: list[dict]) -> None:
        journals.append(json.loads((staging / atomic.JOURNAL_NAME).read_text()))
        published(staging, pairs)

    published = atomic._publish
    monkeypatch.setattr(atomic, "_publish", keep)
    with atomic.atomic_outputs(targets) as outputs:
        for target in targets:
            outputs.path(target).write_text("new")
    assert [t.read_text() for t in targets] == ["new", "new"]
    first, second = journals
    assert [p["name"] for p in first["pairs"]] == ["one.txt"]
    assert [p["name"] for p in second["pairs"]] == ["two.txt"]
    assert first["primary"] is None and len(first["members"]) == 1
    assert second["primary"] and not second["members"]
    assert all(len(j["checksum"]) == 64 for j in journals)
