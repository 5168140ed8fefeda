"""Folders on disk or object storage (snca_cli.runtime.storage), on a local S3 server (moto),
and the identity of rasters on object storage (snca_cli.runtime.raster_identity)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest
import rasterio

from snca_cli.errors import SncaError
from snca_cli.runtime import raster_identity, storage
from snca_cli.runtime.atomic import OwnOutput
from snca_cli.runtime.storage import (
    StorageMirror,
    StoredFolder,
    restored_url,
    storage_url,
    url_scheme,
)
from tests.helpers.rasters import write_raster
from tests.helpers.s3_cluster import s3_filesystem, s3_server, use_empty_bucket

BUCKET = "snca-storage"
ANY = OwnOutput("a test folder", lambda folder: None)


@pytest.fixture(scope="module")
def s3_environment() -> Iterator[dict[str, str]]:
    with s3_server() as env:
        yield env


@pytest.fixture
def s3(s3_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty bucket on the local S3 server; its URL."""
    use_empty_bucket(s3_environment, monkeypatch, BUCKET)
    return f"s3://{BUCKET}"


def _fs() -> fsspec.AbstractFileSystem:
    return s3_filesystem()


@pytest.mark.parametrize(
    ("given", "restored"),
    [
        ("s3:/bucket/run", "s3://bucket/run"),  # pathlib collapsed the //
        ("s3://bucket/run", "s3://bucket/run"),
        ("gs:/b/k.tif", "gs://b/k.tif"),
        ("C:/data/run", "C:/data/run"),  # a Windows drive, not a URL
        ("relative/run", "relative/run"),
    ],
)
def test_a_url_typed_as_a_path_is_restored(given: str, restored: str) -> None:
    assert restored_url(given) == restored


def test_storage_names() -> None:
    assert url_scheme("s3://b/k") == "s3" and url_scheme("file:///tmp/x") is None
    assert url_scheme("/vsis3/b/k") is None and url_scheme("C:/x") is None
    assert storage_url("/vsis3/b/k.tif") == "s3://b/k.tif"
    assert storage_url("/vsigs/b/k.tif") == "gs://b/k.tif"
    assert storage_url("s3://b/k.tif") == "s3://b/k.tif"
    assert storage_url("/vsicurl/https://host/k.tif") is None
    assert storage_url("/data/k.tif") is None


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_set_of_files_is_written_and_read_back(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    root = str(tmp_path) if where == "local" else request.getfixturevalue("s3")
    folder = StoredFolder.of(root).child("unit-1")
    files = {"a.npy": b"alpha", "b.npy": b"beta" * 1000, "unit.json": b"{}"}
    folder.write_files(files, last="unit.json", own=ANY)
    assert folder.exists()
    assert {name: folder.read_bytes(name) for name in files} == files
    folder.write_files({**files, "a.npy": b"again"}, last="unit.json", own=ANY)
    assert folder.read_bytes("a.npy") == b"again"
    with pytest.raises(FileNotFoundError):
        folder.read_bytes("missing.npy")
    folder.remove()
    assert not folder.exists()


class _Recorded:
    """An fsspec file system that records the writes and deletions asked of it."""

    def __init__(self, fs: fsspec.AbstractFileSystem) -> None:
        self.fs, self.calls = fs, []

    def pipe_file(self, path: str, data: bytes) -> None:
        self.calls.append(("write", path.rsplit("/", 1)[-1]))
        self.fs.pipe_file(path, data)

    def rm_file(self, path: str) -> None:
        self.calls.append(("delete", path.rsplit("/", 1)[-1]))
        self.fs.rm_file(path)

    def __getattr__(self, name: str) -> object:
        return getattr(self.fs, name)


def test_on_object_storage_the_last_file_goes_last_and_an_old_one_first(
    s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that finds unit.json finds the files it names: an older unit.json is deleted
    before the files are rewritten, the new one written after them."""
    folder = StoredFolder.of(s3).child("unit-2")
    files = {"unit.json": b"{}", "a.npy": b"a", "b.npy": b"b"}
    folder.write_files(files, last="unit.json", own=ANY)
    recorded = _Recorded(_fs())
    monkeypatch.setattr(storage, "filesystem", lambda url: recorded)
    folder.write_files(files, last="unit.json", own=ANY)
    assert recorded.calls == [
        ("delete", "unit.json"),
        ("write", "a.npy"),
        ("write", "b.npy"),
        ("write", "unit.json"),
    ]


def test_a_storage_error_is_one_line(s3: str) -> None:
    folder = StoredFolder("s3://no-such-bucket-here/run")
    with pytest.raises(SncaError, match=r"^cannot write s3://no-such-bucket-here/run: "):
        folder.write_files({"x": b"1", "last": b"2"}, last="last", own=ANY)


def test_a_missing_protocol_package_names_what_to_install() -> None:
    with pytest.raises(SncaError, match=r"cannot use nosuchproto:// storage .*pip install"):
        StoredFolder("nosuchproto://bucket/run").exists()


def test_the_mirror_writes_locally_then_uploads_the_manifest_last(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StorageMirror() as mirror:
        assert mirror.local(tmp_path / "here.gpkg") == tmp_path / "here.gpkg"
        assert mirror.url(tmp_path / "here.gpkg") is None
        index = mirror.local(f"{s3}/out/region.index")
        assert index.parts[-4:] == ("s3", BUCKET, "out", "region.index")
        assert mirror.shown(index) == f"{s3}/out/region.index"
        index.mkdir(parents=True)
        for name in ("manifest.json", "embeddings.npy", "index.hnsw"):
            (index / name).write_bytes(name.encode())
        recorded = _Recorded(_fs())
        monkeypatch.setattr(storage, "filesystem", lambda url: recorded)
        uploaded = []
        monkeypatch.setattr(
            recorded, "put_file", lambda local, url: uploaded.append(url) or _fs().put(local, url)
        )
        mirror.publish(last="manifest.json")
        assert uploaded[-1] == f"{s3}/out/region.index/manifest.json" and len(uploaded) == 3
        root = index.parents[3]
        with pytest.raises(SncaError, match=r"^output s3://snca-storage/out/region.index exists"):
            mirror.check([index], force=False)
        mirror.check([index], force=True)
    assert not root.exists()  # the local mirror is removed
    assert _fs().cat_file(f"{s3}/out/region.index/embeddings.npy") == b"embeddings.npy"


def test_a_raster_on_object_storage_is_known_by_its_version_not_its_pixels(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 29: the client of a cluster hashed every pixel of every remote raster to plan
    its units; an object's identity now comes from the store (size and ETag), and a raster
    replaced under its name (same size, other pixels) gets another identity."""
    values = np.random.default_rng(0).integers(0, 255, (3, 64, 64)).astype(np.uint8)
    local = write_raster(tmp_path / "scene.tif", values)
    _fs().put_file(str(local), f"{s3}/scene.tif")

    def no_pixels(*args: object) -> None:
        raise AssertionError("the pixels were read")

    monkeypatch.setattr(raster_identity, "_hash_pixels", no_pixels)
    identities = []
    for name in (f"{s3}/scene.tif", f"/vsis3/{BUCKET}/scene.tif"):
        with rasterio.open(name) as dataset:
            identities.append(raster_identity.content_identity(dataset))
    assert identities[0] == identities[1]
    write_raster(local, 255 - values)
    _fs().put_file(str(local), f"{s3}/scene.tif")
    with rasterio.open(f"{s3}/scene.tif") as dataset:
        assert raster_identity.content_identity(dataset) != identities[0]


@pytest.mark.parametrize("given", ["s3://bucket/region.index", Path("s3://bucket/region.index")])
def test_an_index_named_by_a_storage_url_is_refused_in_one_line(given: str | Path) -> None:
    """Only `index build` writes an index to object storage; the commands that open one say
    so (a URL typed as a path arrives with its // collapsed)."""
    from snca_cli.tasks.index.store import read_index

    with pytest.raises(SncaError, match=r"^index s3://bucket/region.index is on object storage"):
        read_index(given)
