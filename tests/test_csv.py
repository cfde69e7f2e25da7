"""CSV data: one example per row, the label last or in a named column; every way a file can
be wrong is one error naming the file, the line and the column. And a file of no known
format says so."""

import json

import numpy as np
import pytest

import gradlab
from gradlab.cli import main
from gradlab.data import load, load_csv


def _write(tmp_path, text, name="d.csv", mode="w"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


# ------------------------------------------------------------------------- reading


def test_a_header_and_labels_in_the_last_column(tmp_path):
    d = load_csv(_write(tmp_path, "x1,x2,label\n0.5,1,0\n2,-3.5e1,1\n4,5,2\n"))
    np.testing.assert_array_equal(d.X, [[0.5, 1.0], [2.0, -35.0], [4.0, 5.0]])
    np.testing.assert_array_equal(d.y, [0, 1, 2])
    assert d.X.dtype == np.float64 and d.y.dtype == np.int64
    assert d.name == "d.csv"
    assert d.notes == ("header row: x1, x2, label; labels from column 3 ('label')",)


def test_no_header_when_the_first_row_is_all_numbers(tmp_path):
    d = load_csv(_write(tmp_path, "1,2,0\n3,4,1\n"))
    np.testing.assert_array_equal(d.X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(d.y, [0, 1])
    assert d.notes == ()


@pytest.mark.parametrize("column", [1, -3, "y"])
def test_the_label_column_by_number_from_1_from_the_end_or_by_name(tmp_path, column):
    d = load_csv(_write(tmp_path, "y,a,b\n1,10,20\n0,30,40\n"), label_column=column)
    np.testing.assert_array_equal(d.X, [[10, 20], [30, 40]])
    np.testing.assert_array_equal(d.y, [1, 0])


def test_blank_lines_crlf_a_byte_order_mark_quotes_spaces_and_whole_float_labels(tmp_path):
    text = '\ufeff"x1", x2 ,label\r\n\r\n 1 ,"2.5",3.0\r\n\r\n4,5,0\r\n\r\n'
    d = load_csv(_write(tmp_path, text.encode("utf-8")))
    np.testing.assert_array_equal(d.X, [[1, 2.5], [4, 5]])
    np.testing.assert_array_equal(d.y, [3, 0])
    assert d.notes[0].startswith("header row: x1, x2, label")


def test_a_square_number_of_features_is_an_image_read_row_by_row(tmp_path):
    d = load_csv(_write(tmp_path, "0,1,2,3,1\n4,5,6,7,0\n"))
    assert d.image_shape == (2, 2) and d.pixel_order == "C"
    np.testing.assert_array_equal(d.images()[1], [[4, 5], [6, 7]])


# -------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text, message", [
    ("", r"d\.csv is empty: a \.csv file for gradlab holds one example per row"),
    ("\n\n  \n", r"d\.csv is empty"),
    ("x1,x2,label\n", r"d\.csv: no examples: only a header row \(line 1\)"),
    ("a,b,c\n1,2,0\n3,4\n", r"d\.csv, line 3: 2 cells, but the header has 3; every row needs one cell per column"),
    ("1,2,0\n3,4,1,9\n", r"d\.csv, line 2: 4 cells, but line 1 has 3"),
    ("a,b,label\n1,2,0\n3,x,1\n", r"d\.csv, line 3, column 2 \('b'\): 'x' is not a number"),
    ("1,2,0\n3,,1\n", r"d\.csv, line 2, column 2: an empty cell; every cell must be a number"),
    ("1,2,0\n3,1_000,1\n", r"d\.csv, line 2, column 2: '1_000' is not a number"),
    ("1,2,0\n3,\u0661\u0662,1\n", r"d\.csv, line 2, column 2: '\u0661\u0662' is not a number"),
    ("1,2,0\n3,nan,1\n", r"d\.csv, line 2, column 2: 'nan' is not a finite number"),
    ("1,2,0\n3,-inf,1\n", r"d\.csv, line 2, column 2: '-inf' is not a finite number"),
    ("a,b,label\n1,2,0\n3,4,2.5\n", r"line 3, column 3 \('label'\): labels must be whole numbers >= 0 \(the classes 0\.\.K-1\); got '2\.5'"),
    ("a,b,label\n1,2,cat\n", r"line 2, column 3 \('label'\): labels must be whole numbers >= 0.*got 'cat'"),
    ("1,2,-1\n", r"line 1, column 3: labels must be whole numbers >= 0.*got '-1'"),
    ("1,2,1e300\n", r"line 1, column 3: labels must be whole numbers >= 0.*got '1e300'"),
    ("x1,2,label\n1,2,0\n", r"line 1, column 1: 'x1' is not a number; the first row mixes names and numbers"),
    ("x\n1\n2\n", r"d\.csv, line 1: one column only; a \.csv file for gradlab needs at least two"),
    ("1;2;0\n3;4;1\n", r"line 1: one column only.*the file seems to be separated by semicolons, gradlab reads commas"),
    ("1,2;3,0\n", r"line 1, column 2: '2;3' is not a number; the file seems to be separated by semicolons"),
    ('1,"2,0\n', r"d\.csv, line 1: not readable as comma-separated values: unexpected end of data"),
])
def test_a_bad_file_is_one_error_naming_the_file_line_and_column(tmp_path, text, message):
    with pytest.raises(gradlab.GradlabError, match=message) as info:
        load_csv(_write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_text_that_is_not_utf8_is_named(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"d\.csv is not UTF-8 text \(byte 4 is b'\\xff'\)"):
        load_csv(_write(tmp_path, b"1,2,\xff\n"))


@pytest.mark.parametrize("column, message", [
    (0, r"label_column must be a column number 1\.\.3 \(or -3\.\.-1 from the end; -1 the last\) or a header name; got label_column=0"),
    (4, r"label_column must be a column number 1\.\.3.*got label_column=4"),
    (-4, r"got label_column=-4"),
    (True, r"got label_column=True"),
    (1.0, r"got label_column=1\.0"),
    ("z", r"label_column='z' is not a column of the header; its columns are 'y', 'a', 'b'"),
])
def test_a_label_column_that_names_no_column(tmp_path, column, message):
    with pytest.raises(gradlab.GradlabError, match=message):
        load_csv(_write(tmp_path, "y,a,b\n1,10,20\n"), label_column=column)


def test_a_label_column_name_needs_a_header(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"label_column='y' names a column, but the file has no header row"):
        load_csv(_write(tmp_path, "1,10,20\n"), label_column="y")


def test_a_header_naming_the_label_column_twice_is_refused(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"label_column='y' names 2 columns of the header"):
        load_csv(_write(tmp_path, "y,a,y\n1,10,20\n"), label_column="y")


# ------------------------------------------------------------------------ load()


def test_load_reads_a_csv_by_its_extension_with_its_label_column(tmp_path):
    path = _write(tmp_path, "y,a\n1,10\n0,30\n", name="D.CSV")
    d = load(str(path), label_column="y")
    np.testing.assert_array_equal(d.y, [1, 0])


@pytest.mark.parametrize("kwargs, message", [
    ({"labels": "l.idx"}, r"labels must be left out for a \.csv file"),
])
def test_load_refuses_idx_labels_with_a_csv(tmp_path, kwargs, message):
    with pytest.raises(gradlab.GradlabError, match=message):
        load(str(_write(tmp_path, "1,0\n")), **kwargs)


def test_a_label_column_belongs_to_csv_files_only(tmp_path):
    with pytest.raises(gradlab.GradlabError, match=r"label_column is for a \.csv file, not the shipped dataset 'digits'"):
        load("digits", label_column=1)
    with pytest.raises(gradlab.GradlabError, match=r"label_column is for a \.csv file .*data='x\.mat'"):
        load("x.mat", label_column=1)


def test_an_unknown_format_is_named_with_the_known_ones(tmp_path):
    path = _write(tmp_path, "1,2,0\n", name="mydata.txt")
    with pytest.raises(gradlab.GradlabError) as info:
        load(str(path))
    assert str(info.value) == (f"data={str(path)!r} is not a known format: .mat, IDX (.idx/.idx.gz with --labels) "
                               f"or .csv; a comma-separated file must be named .csv")
    other = _write(tmp_path, b"\x89PNG....", name="picture.png")
    with pytest.raises(gradlab.GradlabError, match=r"is not a known format: \.mat, IDX \(\.idx/\.idx\.gz with --labels\) or \.csv$"):
        load(str(other))


@pytest.mark.parametrize("name, content", [
    ("train-images-idx3-ubyte", b"not idx at all"),   # MNIST's own name: taken as IDX whatever it holds
    ("images.bin", b"\x00\x00\x08\x03rest"),          # IDX by its first bytes
    ("images.bin.gz", b"\x1f\x8b\x08\x00"),           # gzip: IDX compressed
])
def test_idx_files_are_known_by_name_or_by_their_first_bytes(tmp_path, name, content):
    path = _write(tmp_path, content, name=name)
    with pytest.raises(gradlab.GradlabError, match=r"is taken as IDX images, which need an IDX labels file"):
        load(str(path))


# ---------------------------------------------------------------------- the CLI


def _iris_like(tmp_path, name="flowers.csv"):
    rng = np.random.default_rng(0)
    rows = ["species,sepal_l,sepal_w,petal_l,petal_w"]
    for k in range(3):
        for x in rng.normal(k, 0.3, size=(20, 4)):
            rows.append(",".join([str(k)] + [f"{v:.3f}" for v in x]))
    return _write(tmp_path, "\n".join(rows) + "\n", name=name)


def test_train_and_predict_on_a_csv_with_a_named_label_column(tmp_path, capsys):
    path = _iris_like(tmp_path)
    model = tmp_path / "m.npz"
    assert main(["train", "--data", str(path), "--label-column", "species", "--hidden", "5", "--maxiter", "30",
                 "--quiet", "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "data: flowers.csv: 60 examples, 4 features, images 2x2, labels 0..2" in out
    assert "note: header row: species, sepal_l, sepal_w, petal_l, petal_w; labels from column 1 ('species')" in out
    assert main(["predict", str(model), "--data", str(path), "--label-column", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["m"] == 60 and result["labels"][:3] == [0, 0, 0]


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "mydata.txt"], "is not a known format: .mat, IDX (.idx/.idx.gz with --labels) or .csv"),
    (["train", "--data", "bad.csv"], "bad.csv, line 2, column 2 ('b'): 'oops' is not a number"),
    (["train", "--data", "bad.csv", "--label-column", "z"], "--label-column 'z' is not a column of the header"),
    (["train", "--label-column", "2"], "--label-column is for a .csv file, not the shipped dataset 'digits'"),
])
def test_csv_usage_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "1,2,0\n", name="mydata.txt")
    _write(tmp_path, "a,b,label\n1,oops,0\n", name="bad.csv")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradlab: error: ") and message in err and err.count("\n") == 1
