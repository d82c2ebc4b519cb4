"""Plots render from the real lab captures, keep one colour per verdict, and do not overlap."""

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

import flinkwire
from flinkwire.faces import plots
from tests.builders import pcap_bytes

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
PLAIN = CAPTURES / "s1-plaintext.pcap"
TLS = next((p for p in (CAPTURES / "s3-full-tls-mutual-rest.pcap",
                        CAPTURES / "s2-internal-tls.pcap") if p.exists()), None)
NAMES = ("exposure", "timeline", "topology")


def _analyze(path):
    config = path.with_suffix(".config.yaml")
    return flinkwire.analyze(path, config=config if config.exists() else None)


@pytest.fixture(scope="module")
def plain():
    return _analyze(PLAIN)


@pytest.fixture(scope="module")
def tls():
    if TLS is None:
        pytest.skip("no TLS capture bundled yet")
    return _analyze(TLS)


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    path = tmp_path_factory.mktemp("empty") / "empty.pcap"
    path.write_bytes(pcap_bytes([]))
    return flinkwire.analyze(path)


def _verdict_colours(fig) -> set[str]:
    """Colours of the bars and arrows (the marks that carry a verdict)."""
    seen = set()
    for ax in fig.axes:
        for patch in ax.patches:
            if isinstance(patch, (Rectangle, FancyArrowPatch)):
                seen.add(to_hex(patch.get_facecolor() if isinstance(patch, Rectangle)
                                else patch.get_edgecolor()).upper())
        for collection in ax.collections:  # broken_barh in the timeline
            seen |= {to_hex(c).upper() for c in collection.get_facecolors()}
    return seen


@pytest.mark.parametrize("name", NAMES)
def test_each_plot_is_a_figure_and_saves(plain, name, tmp_path):
    fig = getattr(plain.plot, name)()
    assert isinstance(fig, Figure)
    out = tmp_path / f"{name}.png"
    fig.savefig(out, dpi=80)
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize("name", NAMES)
def test_plaintext_capture_is_drawn_in_the_plaintext_colour(plain, name):
    colours = _verdict_colours(getattr(plots, name)(plain))
    assert plots.VERDICT_COLOURS["plaintext"].upper() in colours
    assert plots.VERDICT_COLOURS["tls"].upper() not in colours


@pytest.mark.parametrize("name", NAMES)
def test_tls_capture_is_drawn_in_the_tls_colour(tls, name):
    colours = _verdict_colours(getattr(plots, name)(tls))
    assert plots.VERDICT_COLOURS["tls"].upper() in colours
    assert plots.VERDICT_COLOURS["plaintext"].upper() not in colours


def test_colours_are_distinct_per_verdict():
    colours = [c.upper() for c in plots.VERDICT_COLOURS.values()]
    assert len(set(colours)) == len(colours) == len(plots.VERDICTS)


def test_compare(plain, tls):
    fig = plain.plot.compare(tls)
    assert isinstance(fig, Figure)
    colours = _verdict_colours(fig)
    assert {plots.VERDICT_COLOURS["plaintext"].upper(),
            plots.VERDICT_COLOURS["tls"].upper()} <= colours
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "jobmanager-rpc · before" in labels and "jobmanager-rpc · after" in labels


@pytest.mark.parametrize("name", NAMES)
def test_empty_capture_gives_an_empty_figure(empty, name):
    fig = getattr(plots, name)(empty)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("no flows" in t for t in texts)


def test_compare_with_an_empty_capture(plain, empty):
    assert isinstance(plots.compare(plain, empty), Figure)
    assert isinstance(plots.compare(empty, empty), Figure)


def _boxes(fig, ax):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts]


@pytest.mark.parametrize("which", ["plain", "tls"])
def test_topology_labels_do_not_overlap(which, request):
    analysis = request.getfixturevalue(which)
    fig = plots.topology(analysis)
    ax = fig.axes[0]
    boxes = _boxes(fig, ax)
    hosts = set(analysis.hosts["ip"])
    assert sum(1 for text, _ in boxes if text.split("\n")[-1] in hosts) == len(hosts)
    for i, (text_a, a) in enumerate(boxes):
        for text_b, b in boxes[i + 1:]:
            assert not a.overlaps(b), (text_a, text_b)


def test_axis_labels_do_not_overlap(plain):
    fig = plots.exposure(plain)
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels()]
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            assert not a.overlaps(b)


def test_timeline_thins_many_flows(plain):
    fig = plots.timeline(plain, max_flows=10)
    assert "of 22 flows" in fig.axes[0].get_title()


def test_plots_do_not_use_pyplot():
    code = ("import sys, flinkwire.faces.plots, flinkwire.faces.html; "
            "sys.exit('matplotlib.pyplot' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_topology_of_many_clients_draws_the_busiest_and_one_node_for_the_rest(tmp_path):
    from tests.builders import conversation

    request = b"GET /overview HTTP/1.1\r\nHost: jm\r\n\r\n"
    frames = []
    for i in range(80):
        # Client i sends i bytes more than client 0, so the busiest clients are the last.
        frames += conversation(client=(f"192.0.2.{i + 10}", 40000 + i),
                               server=("198.51.100.2", 8081),
                               c2s=[request + b"x" * i], s2c=[b"HTTP/1.1 200 OK\r\n\r\n"])
    path = tmp_path / "many-clients.pcap"
    path.write_bytes(pcap_bytes(frames))
    analysis = flinkwire.analyze(path)
    assert len(analysis.flows) == 80

    fig = plots.topology(analysis)
    names = [t.get_text() for t in fig.axes[0].texts]
    drawn = {name.split("\n")[-1] for name in names if "\n" in name}
    others = plots.MAX_TOPOLOGY_HOSTS - 2  # the server and the node for the rest
    assert f"{81 - plots.MAX_TOPOLOGY_HOSTS + 1:,} other\nhosts" in names
    assert "198.51.100.2" in drawn
    assert {f"192.0.2.{i + 10}" for i in range(80 - others, 80)} <= drawn
    assert "192.0.2.10" not in drawn
    assert len(drawn) == plots.MAX_TOPOLOGY_HOSTS


def test_dollars_in_capture_names_are_drawn_literally(tmp_path):
    """Found by the breaker (304): a capture named `node$\\frac$-rotated.pcap` crashed
    `report --html` (matplotlib read the title as mathtext and failed at savefig), and
    `cap_$HOST$_1.pcap` drew a garbled title. Names and labels are drawn as written."""
    from tests.builders import conversation

    frames = conversation(c2s=[b"GET /jobs HTTP/1.1\r\nHost: jm\r\n\r\n"])
    paths = []
    for name in ("node$\\frac$-rotated.pcap", "cap_$HOST$_1.pcap"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(pcap_bytes(frames))
    for path in paths:
        analysis = flinkwire.analyze(path)
        for name in NAMES:
            fig = getattr(analysis.plot, name)()
            fig.savefig(tmp_path / f"{name}.png", dpi=40)
            titles = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
            assert any(path.name in title for title in titles), titles
            texts = [t for ax in fig.axes for t in ax.texts + ax.get_yticklabels()]
            texts += [fig._suptitle] if fig._suptitle else []
            texts += [ax.title for ax in fig.axes]
            assert not any(t.get_parse_math() for t in texts if "$" in t.get_text())
    before, after = (flinkwire.analyze(p) for p in paths)
    fig = plots.compare(before, after, labels=("a$x$b", "c$\\frac$d"))
    fig.savefig(tmp_path / "compare.png", dpi=40)
    assert "a$x$b" in fig.get_suptitle() and not fig._suptitle.get_parse_math()
