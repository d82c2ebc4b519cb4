"""The tables' fast paths build the frames, and read back the values, the plain code did.

Analysis reads rows with operator's getters where every row is one FixedRow class or
every dict holds a key, and reads the flows and findings back from the tuples a frame
was made of instead of from the frame. These tests hold each to the plain code it
replaced, on rows built to sit at its edges: keys missing from some rows, slots never
set, rows of mixed kinds, columns whose values pandas converts (None in a string
column, ints in a float column).
"""

import gc
import math

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from flinkwire.tables import analysis as an
from flinkwire.tables.examine import FixedRow, FlowRow, fixed_row

KEYS = ["a", "b", "c", "d"]
VALUES = st.sampled_from([None, "x", "", "10.0.0.1", 0, 7, -1, 2.5, math.nan, True, False,
                          ["l"], {"k": 1}, b"raw"])
Pair = fixed_row("Pair", ("a", "b"))


def plain_frame_by_columns(rows):
    """The code `_frame_by_columns` replaced: every value through row.get."""
    keys: dict = {}
    for row in rows:
        for key in row:
            if key not in keys:
                keys[key] = None
    missing = float("nan")
    return pd.DataFrame({key: [row.get(key, missing) for row in rows] for key in keys},
                        index=pd.RangeIndex(len(rows)))


def same_frame(fast, plain):
    pd.testing.assert_frame_equal(fast, plain, check_exact=True)
    assert list(fast.dtypes) == list(plain.dtypes)


def dict_rows(min_size=0):
    row = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=5).map(dict)
    return st.lists(row, min_size=min_size, max_size=12)


def pair(values):
    row = Pair.__new__(Pair)
    for key, value in values.items():
        setattr(row, key, value)  # a key left out is a slot never set
    return row


def pair_rows():
    values = st.fixed_dictionaries({}, optional={"a": VALUES, "b": VALUES})
    return st.lists(values.map(pair), max_size=12)


@settings(max_examples=300, deadline=None)
@given(dict_rows())
def test_frames_of_dicts_equal_the_plain_build(rows):
    same_frame(an._frame_by_columns(rows), plain_frame_by_columns(rows))


@settings(max_examples=200, deadline=None)
@given(pair_rows(), dict_rows())
def test_frames_of_fixed_rows_and_mixed_rows_equal_the_plain_build(pairs, dicts):
    same_frame(an._frame_by_columns(pairs), plain_frame_by_columns(pairs))
    mixed = pairs + dicts
    same_frame(an._frame_by_columns(mixed), plain_frame_by_columns(mixed))


@settings(max_examples=200, deadline=None)
@given(pair_rows(), dict_rows())
def test_read_rows_equals_row_get(pairs, dicts):
    for rows in (pairs, dicts, pairs + dicts):
        for keys in (("a", "b"), ("b", "c", "a")):
            plain = [tuple(row.get(key) for key in keys) for row in rows]
            assert an._read_rows(rows, keys) == plain


def test_row_reader_reads_items_as_the_sort_key_did():
    flows = [FlowRow({key: i for key in FlowRow.__slots__}) for i in (3, 1, 2)]
    read = an._row_reader(flows, ("first_ts", "index"))
    assert [read(row) for row in flows] == [(r["first_ts"], r["index"]) for r in flows]
    dicts = [{"first_ts": 2, "index": 0}, {"first_ts": 1, "index": 1}]
    read = an._row_reader(dicts, ("first_ts", "index"))
    assert [read(row) for row in dicts] == [(2, 0), (1, 1)]


def same_values(fast, plain):
    assert len(fast) == len(plain)
    for mine, theirs in zip(fast, plain):
        if isinstance(theirs, float) and math.isnan(theirs):
            assert isinstance(mine, float) and math.isnan(mine)
        else:
            assert type(mine) is type(theirs) and mine == theirs


COLUMN = st.sampled_from([
    ["x", "y"], ["x", None], [None, None], [1, 2], [1, None], [1, 2.5], [True, False],
    [True, 1], ["x", 1], [["l"], None], [math.nan, "x"], [0, -3],
])


@settings(max_examples=200, deadline=None)
@given(st.lists(COLUMN, min_size=1, max_size=4), st.integers(0, 3))
def test_columns_as_read_give_what_iterating_the_frame_gives(columns, repeat):
    width = len(columns)
    names = [f"c{i}" for i in range(width)]
    tuples = [tuple(column[i % 2] for column in columns) for i in range(repeat + 1)]
    frame = an._frame_of_tuples(tuples, names)
    read = an._columns_as_read(frame, names, tuples)
    for name in names:
        same_values(read[name], list(frame[name]))


def test_columns_as_read_of_an_empty_frame_are_empty():
    frame = an._frame_of_tuples([], ["a", "b"])
    assert an._columns_as_read(frame, ["a", "b"], []) == {"a": [], "b": []}


def test_fixed_rows_are_fixed_row_instances():
    # The fast paths recognise rows by this class: FlowRow must stay one.
    assert issubclass(FlowRow, FixedRow) and issubclass(Pair, FixedRow)


def test_table_building_leaves_the_garbage_collector_as_it_found_it(monkeypatch):
    seen = []
    monkeypatch.setattr(an.Analysis, "_build", lambda self, *args: seen.append(gc.isenabled()))
    enabled = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            an.Analysis([], None, None, None, None, False)
            assert gc.isenabled() is state
        assert seen == [False, False]

        def fails(self, *args):
            raise RuntimeError("a table could not be built")
        monkeypatch.setattr(an.Analysis, "_build", fails)
        gc.enable()
        with pytest.raises(RuntimeError):
            an.Analysis([], None, None, None, None, False)
        assert gc.isenabled()
    finally:
        (gc.enable if enabled else gc.disable)()
