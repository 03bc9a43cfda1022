"""CSV files are read with their own delimiter, and a one-column misread is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from regrow.data import prepare_snapshot, to_arrow
from regrow.data.csv_files import check_delimiter, sniff_delimiter
from regrow.errors import DataError


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_found_from_the_first_lines(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "data.csv"
    rows = [["id", "amount", "city"], ["1", "12.5", "Paris"], ["2", "3", "Lyon"]]
    path.write_text("".join(delimiter.join(r) + "\n" for r in rows))
    table = to_arrow(path)
    assert table.column_names == ["id", "amount", "city"]
    assert table.column("amount").to_pylist() == [12.5, 3.0]


def test_a_delimiter_inside_quotes_does_not_fool_the_sniffer() -> None:
    sample = 'name,comment\nana,"yes; sure; fine"\nbo,"no; never"\n'
    assert sniff_delimiter(sample) == ","


def test_a_semicolon_file_with_decimal_commas_is_still_semicolon() -> None:
    assert sniff_delimiter("a;b\n1,5;2\n3;4,25\n") == ";"


def test_a_single_column_file_reads_as_one_column(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("score\n1\n2\n")
    assert to_arrow(path).column_names == ["score"]


def test_only_the_first_kilobytes_are_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    pd.DataFrame({"a": range(20_000), "b": range(20_000)}).to_csv(path, index=False, sep=";")
    assert to_arrow(path).column_names == ["a", "b"]


def test_a_given_delimiter_is_used(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a|b\n1|2\n")
    assert to_arrow(path, delimiter="|").column_names == ["a", "b"]
    assert to_arrow(path, delimiter="pipe").column_names == ["a", "b"]


def test_a_one_column_result_with_a_delimiter_in_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(DataError, match=r"read as one column named 'a;b;c'") as info:
        to_arrow(path, delimiter=",")
    assert info.value.hint is not None
    assert "--delimiter ';'" in info.value.hint
    assert "delimiter=';'" in info.value.hint


def test_a_semicolon_file_becomes_a_snapshot_of_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("a;b;c\n1;2;3\n4;5;6\n")
    snap = prepare_snapshot(path)
    assert snap.schema.names == ("a", "b", "c")
    assert snap.source == str(path.resolve())


@pytest.mark.parametrize(
    ("given", "expected"), [("tab", "\t"), ("\\t", "\t"), (";", ";"), ("semicolon", ";")]
)
def test_delimiters_can_be_named(given: str, expected: str) -> None:
    assert check_delimiter(given) == expected


@pytest.mark.parametrize("bad", ["", ";;", '"', "\n"])
def test_bad_delimiters_are_refused_naming_them(bad: str) -> None:
    with pytest.raises(DataError, match="the delimiter must be one character"):
        check_delimiter(bad)


def test_a_delimiter_applies_to_csv_files_only(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(DataError, match="applies to CSV files, not to a pandas"):
        to_arrow(frame, delimiter=";")
    frame.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(DataError, match="applies to CSV files, not to"):
        to_arrow(tmp_path / "a.parquet", delimiter=";")


def test_decimal_commas_in_a_semicolon_file_warn_and_stay_text(tmp_path: Path) -> None:
    from regrow.errors import DataQualityWarning

    path = tmp_path / "eu.csv"
    path.write_text("id;distance_km;city;note\n1;3,227;Paris;a,b\n2;12;Lyon;c\n3;1.234,5;Nice;d\n")
    with pytest.warns(DataQualityWarning) as caught:
        table = to_arrow(path)
    message = str(caught[0].message)
    assert "column 'distance_km' holds" in message  # 'note' holds text with commas: not named
    assert "decimal=','" in message
    assert table.column("distance_km").to_pylist() == ["3,227", "12", "1.234,5"]  # not guessed


def test_text_with_commas_in_a_semicolon_file_does_not_warn(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("id;amount;comment\n1;3.5;yes, sure\n2;4;no\n")
    table = to_arrow(path)  # filterwarnings = error: a warning would fail the test
    assert table.column("amount").to_pylist() == [3.5, 4.0]
