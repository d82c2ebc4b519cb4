"""RowList holds settled rows as tuples and full tables as frames; the frames and rows
read back equal what plain lists of dicts gave (the code these replace)."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from flinkwire.tables import analysis as an
from flinkwire.tables import examine as ex

ROWS = [
    {"flow_id": "F1", "direction": "c2s", "offset": 0, "headers": {"Host": "a"}},
    {"flow_id": "F1", "direction": "s2c", "status": 200, "offset": 5},
    {"flow_id": "F2", "direction": "c2s", "offset": 9, "headers": {"Host": "b"},
     "query": None, "text": "é€"},
    {"offset": 12, "flow_id": "F3", "direction": None},
]


def settled(rows, every=1):
    table = ex.RowList()
    for number, row in enumerate(rows, 1):
        table.append(dict(row))
        if number % every == 0:
            table.settle()
    return table


@pytest.mark.parametrize("every", [1, 2, 5])
def test_settled_rows_read_back_as_the_same_dicts_in_order(every):
    table = settled(ROWS, every)
    assert len(table) == len(ROWS)
    assert list(table) == ROWS
    assert [list(row) for row in table] == [list(row) for row in ROWS]  # key order too
    assert table[1] == ROWS[1] and table[-1] == ROWS[-1]
    assert list(table[1:3]) == ROWS[1:3]
    assert table == ROWS
    copy = ex.RowList()
    copy.extend(table)
    assert copy == ROWS
    assert pickle.loads(pickle.dumps(table)) == ROWS


def test_open_rows_stay_the_objects_changed_in_place():
    table = settled(ROWS[:2])
    row = {"flow_id": "F9", "count": 1}
    table.append(row)
    for seen in table[2:]:
        seen["count"] += 1
    assert row["count"] == 2 and table[2] is row


def test_frame_of_settled_rows_equals_pandas_of_the_dicts():
    for every in (1, 3):
        frame = an._frame(settled(ROWS, every), ["flow_id"])
        expected = an._frame(list(ROWS), ["flow_id"])
        pd.testing.assert_frame_equal(frame, expected)
        assert list(frame.columns) == list(pd.DataFrame(ROWS).columns)


def test_a_broken_reading_of_settled_rows_is_seen(monkeypatch):
    # The check above fails when settling loses a key's place (held here by swapping
    # the first two keys of every settled row).
    table = settled(ROWS)
    table._keys = [(keys[1], keys[0], *keys[2:]) for keys in table._keys]
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(an._frame(table, ["flow_id"]),
                                      an._frame(list(ROWS), ["flow_id"]))


def test_a_full_table_is_frozen_into_its_frame_and_refuses_rows():
    rows = ex.Rows(max_rows=2)
    rows.early_frames = an.EARLY_FRAMES
    rows.http.append({"flow_id": "F1", "offset": 0, "parts": None})
    rows.http.append({"flow_id": "F1", "offset": 7, "parts": [{"zip": None}]})
    expected = an._frame(list(rows.http), ["flow_id"])
    rows.flow_done()
    assert rows.http.frame is not None and len(rows.http) == 2
    assert not rows.room("http", "F2")
    assert list(rows.http[2:]) == []
    assert rows.http.rows_with("parts") == [{"flow_id": "F1", "offset": 7,
                                             "parts": [{"zip": None}]}]
    pd.testing.assert_frame_equal(an._frame(rows.http, ["flow_id"]), expected)
    with pytest.raises(ValueError):
        rows.http.append({"flow_id": "F2"})


VALUES = {
    "ascii": ["a", "bc", "", "a" * 500],
    "unicode": ["é", "ab", "ü€x", ""],
    "with_none": ["a", None, "b"],
    "ints": [1, 2, 3],
    "ints_none": [None, 5, None],
    "nones": [None, None, None],
    "bools": [True, False, True],
    "floats_nan": [1.5, math.nan, 2.0],
    "mixed": ["a", 1, None],
    "lists": [["x"], [], None],
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_frame_of_tuples_equals_pandas_of_the_tuples(name):
    values = VALUES[name]
    tuples = [(f"F{i}", value, i) for i, value in enumerate(values)]
    columns = ["flow_id", name, "n"]
    got = an._frame_of_tuples(tuples, columns)
    expected = pd.DataFrame(tuples, columns=columns)
    pd.testing.assert_frame_equal(got, expected)
    assert got.dtypes.to_dict() == expected.dtypes.to_dict()


def test_a_string_pandas_cannot_store_fails_as_in_pandas():
    tuples = [("F1", "\udcff"), ("F2", "a")]
    with pytest.raises(UnicodeEncodeError):
        pd.DataFrame(tuples, columns=["flow_id", "text"])
    with pytest.raises(UnicodeEncodeError):
        an._frame_of_tuples(tuples, ["flow_id", "text"])


def test_string_array_is_what_pandas_makes_and_a_broken_one_is_seen():
    values = ["é", "ab", "ü€x", "", "plain"]
    made = pd.Series(an._string_array(values))
    pd.testing.assert_series_equal(made, pd.Series(values))
    wrong = list(values)
    wrong[2] = "ü€"
    with pytest.raises(AssertionError):
        pd.testing.assert_series_equal(pd.Series(an._string_array(wrong)),
                                       pd.Series(values))
    assert an._string_array(["\udcff"]) == ["\udcff"]  # not encodable: pandas decides
    assert isinstance(np.asarray(made), np.ndarray)


@pytest.mark.parametrize("values", [["b", "a", "b", None, "c", "a"], [None], ["x"] * 3,
                                    ["é", "e", "Z", "é"]])
def test_categorical_is_what_pandas_makes(values):
    made, expected = an._categorical(values), pd.Categorical(values)
    pd.testing.assert_extension_array_equal(made, expected)
    assert list(made.categories) == list(expected.categories)
    assert made.categories.dtype == expected.categories.dtype


def test_a_broken_categorical_is_seen():
    values = ["b", "a", "b", "c"]
    made = an._categorical(values)
    made[0] = "a"
    with pytest.raises(AssertionError):
        pd.testing.assert_extension_array_equal(made, pd.Categorical(values))


def test_findings_remediation_is_categorical_and_reads_as_its_text(tmp_path):
    import flinkwire
    from pathlib import Path
    capture = Path(__file__).resolve().parents[2] / "captures" / "s1-plaintext.pcap"
    findings = flinkwire.analyze(capture).findings
    assert isinstance(findings["remediation"].dtype, pd.CategoricalDtype)
    texts = findings["remediation"].astype(str)
    assert texts.str.contains("security.ssl").all()
    assert findings["remediation"].nunique() < len(findings) / 4
