"""Rows share what flows repeat, and Analysis lets the row lists go once they are frames."""

import pickle
from pathlib import Path

import pandas as pd
import pytest

from flinkwire.tables import analysis as an
from flinkwire.tables import examine as ex
from flinkwire.tcp.build import build_flows

ROOT = Path(__file__).resolve().parents[2]
S1 = ROOT / "captures" / "s1-plaintext.pcap"


def examined(path):
    paths, config, ctx = an.prepare(path, None, False, 8)
    rows = ex.Rows()
    stats = build_flows(paths, ex.examiner(ctx, rows))
    return paths, rows, stats, ctx, config


def test_shared_values_are_one_object_and_exact_lookalikes_only():
    rows = ex.Rows()
    first = rows.shared(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"])
    again = rows.shared(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"])
    assert again is first
    # Equal under == but not the same value: 1, 1.0 and True stay apart, as do dicts
    # whose keys come in another order (JSON shows the order).
    assert rows.shared([1]) is not rows.shared([True])
    assert type(rows.shared(1.0)) is float and rows.shared(True) is True
    assert list(rows.shared({"a": 1, "b": 2})) == ["a", "b"]
    assert list(rows.shared({"b": 2, "a": 1})) == ["b", "a"]
    unhashable = [{1, 2}]
    assert rows.shared(unhashable) == unhashable


def test_shared_memo_keeps_its_first_values_up_to_its_cap(monkeypatch):
    monkeypatch.setattr(ex, "MAX_SHARED_VALUES", 3)
    rows = ex.Rows()
    early = rows.shared("10.0.0.1")
    for value in ("a", ("a",), "late"):
        rows.shared(value)
    # A string is its own key and a tuple of it another, so both took a place.
    assert len(rows._shared) == 3 and rows.shared("10.0.0.1".join(["", ""])) is early
    late = "".join(["la", "te"])
    assert rows.shared(late) is late  # past the cap: the value itself, not kept


def test_shared_memo_does_not_travel_with_pickled_rows():
    rows = ex.Rows()
    rows.shared("10.0.0.1")
    copy = pickle.loads(pickle.dumps(rows))
    assert copy._shared == {} and rows._shared


def test_flow_rows_repeat_addresses_and_keep_only_the_content_read_later():
    _, rows, _, _, _ = examined(S1)
    by_text = {}
    for row in rows.flows:
        for key in ("client_ip", "server_ip"):
            assert by_text.setdefault(row[key], row[key]) is row[key]
        content = row["_content"]
        if content is not None:
            assert set(content) <= set(ex.KEPT_CONTENT)


def test_analysis_takes_the_rows_over_and_frames_match_rows_from_dicts():
    paths, rows, stats, ctx, config = examined(S1)
    tls, snippets = list(rows.tls), list(rows.snippets)
    analysis = an.Analysis(paths, rows, stats, ctx, config, False)
    for name in ("flows", "tls", "snippets", "http", "rpc", "records", "blobs", "findings",
                 "anomalies"):
        assert getattr(rows, name) == []
    pd.testing.assert_frame_equal(analysis.tls, an._frame(tls, ["flow_id"]), check_exact=True)
    pd.testing.assert_frame_equal(analysis.snippets, an._frame(snippets, an.SNIPPET_COLUMNS),
                                  check_exact=True)
    # A frame from tuples is the frame pandas makes from dicts with those keys.
    dicts = analysis.findings.to_dict("records")
    tuples = [tuple(d[c] for c in an.FINDING_COLUMNS) for d in dicts]
    pd.testing.assert_frame_equal(an._frame_of_tuples(tuples, an.FINDING_COLUMNS),
                                  an._frame(dicts, an.FINDING_COLUMNS), check_exact=True)


def test_tls_rows_share_offered_lists_and_certificates():
    _, rows, _, _, _ = examined(ROOT / "captures" / "s2-internal-tls.pcap")
    assert len(rows.tls) > 1
    ciphers = {}
    for row in rows.tls:
        key = tuple(row["ciphers_offered"])
        assert ciphers.setdefault(key, row["ciphers_offered"]) is row["ciphers_offered"]
    assert len(ciphers) < len(rows.tls)


def test_fixed_rows_behave_as_mappings_with_fixed_keys():
    from flinkwire.tables.examine import FlowRow, TlsRow

    values = {key: index for index, key in enumerate(FlowRow.__slots__)}
    row = FlowRow(values)
    assert dict(row) == values and list(row) == list(values) and row == values
    assert {**row}["index"] == values["index"] and row.get("nope", 7) == 7
    row["index"] += 5
    assert row["index"] == values["index"] + 5
    assert pickle.loads(pickle.dumps(row)) == row
    assert type(pickle.loads(pickle.dumps(row))) is FlowRow
    with pytest.raises(KeyError):
        row["not_a_column"] = 1
    with pytest.raises(KeyError):
        row["__class__"]
    with pytest.raises(TypeError):
        del row["index"]
    assert "client_cert_sent" in TlsRow.__slots__ and "client_cert_sent" not in row
