"""Shipped digits, .mat and IDX loaders (on files the tests write), split, scaling."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import gradlab
import gradlab.data
from gradlab.data import Scaling, load, load_digits, load_idx, load_mat, read_idx, train_test_split

#: Class distribution of the UCI optical-recognition digits, test part (optdigits.tes),
#: as published in the data set's description (optdigits.names).
UCI_TEST_CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


# ------------------------------------------------------------------------ shipped digits


def test_shipped_digits_match_the_published_description():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == UCI_TEST_CLASS_COUNTS
    raw = load_digits(raw=True).X
    # Pixels count "on" bits in 4x4 blocks: integers 0..16; the default divides by 16.
    assert raw.min() == 0 and raw.max() == 16 and np.all(raw == np.round(raw))
    np.testing.assert_array_equal(X, raw / 16)


def test_shipped_digits_are_upright_images_of_their_labels():
    # An independent check of the pixel layout, on class-mean images: a 0 is a ring with
    # an empty centre; a 1 is a vertical bar (a transposed layout would make it
    # horizontal); a 7 carries its ink at the top (a flipped layout puts it at the bottom).
    d = load_digits()
    imgs = d.images()
    zero, one, seven = (imgs[d.y == k].mean(axis=0) for k in (0, 1, 7))
    assert zero[3:5, 3:5].mean() < 0.2 < zero[3:5, 1:2].mean()
    assert one[:, 3:5].mean() > 2 * one[3:5, :].mean()
    assert seven[0:2, :].mean() > 2 * seven[6:8, :].mean()


def test_missing_data_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADLAB_DATA", str(tmp_path))
    with pytest.raises(gradlab.GradlabError, match=r"shipped digits are missing: no file digits.npz in .*"
                                                   r"the folder named by \$GRADLAB_DATA"):
        load_digits()


def test_the_digits_are_read_from_inside_the_package(monkeypatch):
    # Where a wheel puts them: gradlab/_data, next to the modules, not a top-level data/.
    monkeypatch.delenv("GRADLAB_DATA", raising=False)
    folder = Path(str(gradlab.data.data_dir()))
    assert folder == Path(gradlab.__file__).parent / "_data"
    assert (folder / "digits.npz").is_file() and (folder / "README.md").is_file()


def test_damaged_shipped_file_is_a_clear_error(tmp_path, monkeypatch):
    np.savez(tmp_path / "digits.npz", images=np.zeros((5, 8, 8), np.uint8), labels=np.zeros(5, np.uint8))
    monkeypatch.setenv("GRADLAB_DATA", str(tmp_path))
    with pytest.raises(gradlab.GradlabError, match=r"does not hold 1797 uint8 images"):
        load_digits()


# ------------------------------------------------------------------------------- .mat


def _course_like(m=30, side=4, seed=0):
    """Images and digits 0..9; X unrolled column by column, as MATLAB stores it."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, size=(m, side, side))
    digits = np.arange(m) % 10
    X = images.transpose(0, 2, 1).reshape(m, -1)  # row i: column 0 of image i, then column 1, ...
    return images, digits, X


def test_mat_in_the_course_layout_maps_label_10_to_digit_0_and_says_so(tmp_path):
    images, digits, X = _course_like()
    course_y = np.where(digits == 0, 10, digits).reshape(-1, 1).astype(np.uint8)  # 1..10, column
    path = tmp_path / "ex4.mat"
    scipy.io.savemat(path, {"X": X, "y": course_y})
    d = load_mat(path)
    np.testing.assert_array_equal(d.y, digits)
    assert len(d.notes) == 1 and "label 10 as 0" in d.notes[0]
    np.testing.assert_array_equal(d.X, X)
    # MATLAB unrolls column by column; the dataset knows and gives the images back.
    assert d.image_shape == (4, 4) and d.pixel_order == "F"
    np.testing.assert_array_equal(d.images(), images)


def test_mat_with_labels_from_0_is_left_alone(tmp_path):
    _, digits, X = _course_like()
    scipy.io.savemat(tmp_path / "plain.mat", {"X": X, "y": digits})
    d = load_mat(tmp_path / "plain.mat")
    np.testing.assert_array_equal(d.y, digits)
    assert d.notes == ()


@pytest.mark.parametrize(
    "contents, pattern",
    [
        ({"X": np.ones((3, 4))}, r"no variable 'y'.*found: X"),
        ({"images": np.ones((3, 4)), "y": [1, 2, 3]}, r"no variable 'X'"),
        ({"X": np.ones((3, 4)), "y": np.array([0.0, 1.5, 2.0])}, r"labels y must be integers; got y\[1\]=1.5"),
        ({"X": np.ones((3, 4)), "y": np.array([0, 1])}, r"one entry per row of X \(3\)"),
        ({"X": np.ones((3, 4)), "y": np.array([0, -1, 2])}, r"must be >= 0; got y\[1\]=-1"),
        ({"X": np.array([[1.0, np.nan]]), "y": [0]}, r"X\[0, 1\]=nan"),
        ({"X": "text", "y": [0]}, r"X must be a real \(m, n\) matrix"),
    ],
    ids=["no-y", "no-X", "fractional-label", "short-y", "negative-label", "nan-pixel", "X-not-numbers"],
)
def test_bad_mat_contents_are_named(tmp_path, contents, pattern):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, contents)
    with pytest.raises(gradlab.GradlabError, match=pattern):
        load_mat(path)


def test_a_file_that_is_not_mat_is_a_clear_error(tmp_path):
    path = tmp_path / "fake.mat"
    path.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(gradlab.GradlabError, match=r"not a readable MATLAB \.mat file"):
        load_mat(path)
    with pytest.raises(gradlab.GradlabError, match=r"no such file"):
        load_mat(tmp_path / "missing.mat")


# -------------------------------------------------------------------------------- IDX


def _idx_bytes(array: np.ndarray, code: int, dtype: str) -> bytes:
    """An IDX file written by hand from the format's description (not by gradlab)."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(dtype).tobytes()


@pytest.fixture
def mnist_like():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(12, 5, 7), dtype=np.uint8)
    labels = (np.arange(12) * 7 % 10).astype(np.uint8)
    return images, labels


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
def test_idx_images_and_labels(tmp_path, mnist_like, compressed):
    images, labels = mnist_like
    img_bytes, lab_bytes = _idx_bytes(images, 0x08, ">u1"), _idx_bytes(labels, 0x08, ">u1")
    if compressed:
        img_bytes, lab_bytes = gzip.compress(img_bytes), gzip.compress(lab_bytes)
    suffix = ".gz" if compressed else ""
    (tmp_path / f"img.idx{suffix}").write_bytes(img_bytes)
    (tmp_path / f"lab.idx{suffix}").write_bytes(lab_bytes)
    d = load_idx(tmp_path / f"img.idx{suffix}", tmp_path / f"lab.idx{suffix}")
    np.testing.assert_array_equal(d.X, images.reshape(12, 35).astype(float))
    np.testing.assert_array_equal(d.y, labels)
    assert d.image_shape == (5, 7)
    np.testing.assert_array_equal(d.images(), images)
    # load() takes IDX images with --labels the way the CLI does.
    np.testing.assert_array_equal(load(str(tmp_path / f"img.idx{suffix}"), str(tmp_path / f"lab.idx{suffix}")).y, labels)


def test_idx_big_endian_types(tmp_path):
    values = np.array([[1.5, -2.25], [1e300, -0.0]])
    (tmp_path / "f.idx").write_bytes(_idx_bytes(values, 0x0E, ">f8"))
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), values)
    ints = np.array([-70000, 5, 2**31 - 1])
    (tmp_path / "i.idx").write_bytes(_idx_bytes(ints, 0x0C, ">i4"))
    np.testing.assert_array_equal(read_idx(tmp_path / "i.idx"), ints)


def test_bad_idx_files_are_named(tmp_path, mnist_like):
    images, labels = mnist_like
    good = _idx_bytes(images, 0x08, ">u1")
    cases = {
        "truncated.idx": (good[:-5], r"IDX data truncated: header says shape \(12, 5, 7\)"),
        "long.idx": (good + b"\x00", r"longer than its header says"),
        "magic.idx": (b"\x01\x02\x08\x03" + good[4:], r"not an IDX file.*01 02 08 03"),
        "type.idx": (b"\x00\x00\x07\x03" + good[4:], r"not an IDX file"),
        "empty.idx": (b"", r"not an IDX file.*empty file"),
        "header.idx": (good[:9], r"IDX header truncated"),
        "damaged.idx.gz": (gzip.compress(good)[:-12], r"damaged gzip file"),
    }
    for name, (content, pattern) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(gradlab.GradlabError, match=pattern):
            read_idx(tmp_path / name)


def test_idx_images_and_labels_must_match(tmp_path, mnist_like):
    images, labels = mnist_like
    (tmp_path / "img.idx").write_bytes(_idx_bytes(images, 0x08, ">u1"))
    (tmp_path / "lab.idx").write_bytes(_idx_bytes(labels[:10], 0x08, ">u1"))
    with pytest.raises(gradlab.GradlabError, match=r"holds 12 images.*holds 10 labels"):
        load_idx(tmp_path / "img.idx", tmp_path / "lab.idx")
    (tmp_path / "flt.idx").write_bytes(_idx_bytes(labels.astype(float), 0x0E, ">f8"))
    with pytest.raises(gradlab.GradlabError, match=r"labels must be integers"):
        load_idx(tmp_path / "img.idx", tmp_path / "flt.idx")
    with pytest.raises(gradlab.GradlabError, match=r"need an IDX labels file"):
        load(str(tmp_path / "img.idx"))
    with pytest.raises(gradlab.GradlabError, match=r"neither a name nor an existing file"):
        load("mnist")


# ------------------------------------------------------------------------------ split


def test_split_is_stratified_disjoint_and_deterministic():
    X, y = load_digits()
    s = train_test_split(X, y, test_fraction=0.2, seed=0)
    assert len(s.test_index) == round(0.2 * 1797)
    assert set(s.train_index).isdisjoint(s.test_index)
    assert sorted(np.r_[s.train_index, s.test_index].tolist()) == list(range(1797))
    np.testing.assert_array_equal(s.X_test, X[s.test_index])
    np.testing.assert_array_equal(s.y_train, y[s.train_index])
    # Each class holds its share of the test part to within one example.
    counts = np.bincount(s.y_test, minlength=10)
    assert np.all(np.abs(counts - 0.2 * np.array(UCI_TEST_CLASS_COUNTS)) < 1)
    again = train_test_split(X, y, test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again.test_index, s.test_index)
    other = train_test_split(X, y, test_fraction=0.2, seed=1)
    assert not np.array_equal(other.test_index, s.test_index)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"test_fraction": 1.0}, r"test_fraction must be a number in \[0, 1\); got test_fraction=1.0"),
        ({"test_fraction": -0.1}, r"test_fraction=-0.1"),
        ({"seed": -3}, r"seed=-3"),
    ],
)
def test_bad_split_arguments(kwargs, pattern):
    with pytest.raises(gradlab.GradlabError, match=pattern):
        train_test_split(np.ones((10, 2)), np.arange(10) % 2, **kwargs)


def test_scaling_uses_training_statistics_and_leaves_constant_features_alone():
    X = np.array([[0.0, 1.0, 5.0], [0.0, 3.0, 5.0], [0.0, 5.0, 5.0]])
    sc = Scaling.fit(X)
    np.testing.assert_array_equal(sc.mean, [0.0, 3.0, 5.0])
    np.testing.assert_allclose(sc.std, [1.0, np.sqrt(8 / 3), 1.0])
    out = sc.apply(np.array([[2.0, 3.0, 5.0]]))
    np.testing.assert_allclose(out, [[2.0, 0.0, 0.0]])
    with pytest.raises(gradlab.GradlabError, match=r"X must have 3 columns"):
        sc.apply(np.ones((1, 2)))
