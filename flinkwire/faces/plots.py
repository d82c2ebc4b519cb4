"""Pictures of an analysis: exposure per channel, a timeline, the topology, a comparison.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so
nothing global changes, no window opens, and the caller decides whether to
show, style or save it (`fig.savefig("exposure.png")`). In Jupyter, run
`%matplotlib inline` once so a returned Figure displays as an image.

One colour per verdict, the same in every plot (`VERDICT_COLOURS`), chosen from
the Okabe-Ito palette so that they stay apart for colour-blind readers.

Text that comes from outside (capture file names, `compare`'s labels, roles, addresses)
is drawn with `parse_math=False`: matplotlib would read a `$...$` in it as mathtext,
garbling the title or failing at `savefig`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.transforms import Bbox
from matplotlib.path import Path
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .summary import human_bytes, secret_findings

VERDICTS = ("plaintext", "opaque", "tls", "no-payload")
VERDICT_COLOURS = {
    "plaintext": "#D55E00",   # vermillion: readable on the wire
    "opaque": "#E69F00",      # orange: not TLS, not understood
    "tls": "#0072B2",         # blue: encrypted
    "no-payload": "#999999",  # grey: nothing sent
}
VERDICT_LABELS = {"plaintext": "plaintext", "opaque": "opaque (not TLS)", "tls": "TLS",
                  "no-payload": "no payload"}
COMPONENT_LABELS = {"jobmanager": "JobManager", "taskmanager": "TaskManager",
                    "client": "client"}
# a flow shows the worst of its verdicts when several share one edge
VERDICT_RANK = {"plaintext": 0, "opaque": 1, "tls": 2, "no-payload": 3}


def verdict_colour(verdict) -> str:
    return VERDICT_COLOURS.get(verdict, "#555555")


def _legend_handles(verdicts) -> list:
    return [Patch(facecolor=verdict_colour(v), label=VERDICT_LABELS.get(v, str(v)))
            for v in VERDICTS if v in set(verdicts)]


def _bytes_axis(ax, axis="x") -> None:
    formatter = FuncFormatter(lambda value, _pos: human_bytes(int(value)) if value else "0")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)


def _empty(fig: Figure, title: str, message: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title, parse_math=False)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="#555555", parse_math=False)
    return fig


def _capture_name(analysis) -> str:
    import os
    names = [os.path.basename(p) for p in analysis.paths]
    if len(names) > 2:
        return f"{names[0]} and {len(names) - 1} more"
    return ", ".join(names)


def _per_role_verdict(flows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bytes, flows) tables: one row per role, one column per verdict."""
    frame = flows.assign(total=flows["bytes_c2s"].fillna(0) + flows["bytes_s2c"].fillna(0))
    by_bytes = frame.pivot_table(index="role", columns="verdict", values="total",
                                 aggfunc="sum", fill_value=0)
    by_flows = frame.pivot_table(index="role", columns="verdict", values="flow_id",
                                 aggfunc="count", fill_value=0)
    columns = [v for v in VERDICTS if v in by_bytes.columns]
    columns += [c for c in by_bytes.columns if c not in columns]
    return by_bytes[columns], by_flows[columns]


def exposure(analysis, figsize=None) -> Figure:
    """Bytes and flows per channel, stacked by verdict (two horizontal bar charts)."""
    flows = analysis.flows
    rows = max(1, flows["role"].nunique()) if len(flows) else 1
    fig = Figure(figsize=figsize or (11, 1.6 + 0.45 * rows), layout="constrained")
    title = f"Exposure per channel: {_capture_name(analysis)}"
    if flows.empty:
        return _empty(fig, title, "no flows in the capture")

    by_bytes, by_flows = _per_role_verdict(flows)
    order = by_bytes.sum(axis=1).sort_values().index  # biggest channel on top
    by_bytes, by_flows = by_bytes.loc[order], by_flows.loc[order]
    ax_bytes, ax_flows = fig.subplots(1, 2, sharey=True, width_ratios=[3, 2])
    y = np.arange(len(order))
    for ax, table in ((ax_bytes, by_bytes), (ax_flows, by_flows)):
        left = np.zeros(len(order))
        for verdict in table.columns:
            values = table[verdict].to_numpy(dtype=float)
            ax.barh(y, values, left=left, color=verdict_colour(verdict), height=0.6,
                    edgecolor="white", linewidth=0.5)
            left += values
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlim(0, max(left.max(), 1) * 1.18)
        for yi, total in zip(y, left):
            label = human_bytes(int(total)) if ax is ax_bytes else f"{int(total)}"
            ax.text(total, yi, f" {label}", va="center", fontsize=8.5, color="#333333")
    ax_bytes.set_yticks(y, list(order), parse_math=False)
    ax_bytes.set_xlabel("bytes (both directions)")
    _bytes_axis(ax_bytes)
    ax_bytes.xaxis.set_major_locator(MaxNLocator(5))
    ax_flows.set_xlabel("flows")
    ax_flows.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    fig.suptitle(title, fontsize=12, parse_math=False)
    fig.legend(handles=_legend_handles(by_bytes.columns), loc="outside lower center",
               ncol=4, frameon=False)
    return fig


def timeline(analysis, figsize=None, max_flows: int = 400) -> Figure:
    """Each flow as a bar from its first to its last packet, one band per channel.

    Seconds are counted from the first packet of the capture. With more than
    `max_flows` flows only the longest-lived ones of each channel are drawn
    (the title says so).
    """
    flows = analysis.flows
    title = f"Flows over time: {_capture_name(analysis)}"
    if flows.empty:
        return _empty(Figure(figsize=figsize or (11, 3), layout="constrained"), title,
                      "no flows in the capture")

    frame = flows.assign(duration=flows["last_ts"] - flows["first_ts"])
    shown = frame
    if len(frame) > max_flows:
        share = max_flows / len(frame)
        rank = frame.groupby("role")["duration"].rank(method="first", ascending=False)
        quota = frame.groupby("role")["flow_id"].transform(
            lambda g: max(1, int(len(g) * share)))
        shown = frame[rank <= quota]
        title += f" ({len(shown)} of {len(frame)} flows, the longest of each channel)"
    shown = shown.sort_values(["role", "first_ts"])
    roles = list(dict.fromkeys(shown["role"]))
    height = min(14, 1.8 + 0.16 * len(shown) + 0.25 * len(roles))
    fig = Figure(figsize=figsize or (11, max(3, height)), layout="constrained")
    ax = fig.add_subplot()

    start = int(flows["first_ts"].min())
    span = max((int(flows["last_ts"].max()) - start) / 1e9, 1e-3)
    min_width = span / 400  # a 2 ms REST call must still be visible
    ticks, labels, y = [], [], 0.0
    for index, role in enumerate(roles):
        group = shown[shown["role"] == role]
        first = y
        for flow in group.itertuples(index=False):
            x0 = (flow.first_ts - start) / 1e9
            width = max((flow.last_ts - flow.first_ts) / 1e9, min_width)
            ax.broken_barh([(x0, width)], (y - 0.35, 0.7), facecolors=verdict_colour(
                flow.verdict))
            y += 1
        ticks.append((first + y - 1) / 2)
        total = int((frame["role"] == role).sum())
        labels.append(f"{role} ({len(group)})" if total == len(group)
                      else f"{role} ({len(group)} of {total})")
        if index < len(roles) - 1:
            ax.axhline(y - 0.5 + 0.4, color="#cccccc", linewidth=0.8)
        y += 0.8
    ax.set_yticks(ticks, labels, parse_math=False)
    ax.set_ylim(y - 0.4, -0.8)
    ax.set_xlim(-span * 0.01, span * 1.01)
    ax.set_xlabel("seconds since the first packet")
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title, fontsize=12, parse_math=False)
    fig.legend(handles=_legend_handles(shown["verdict"]), loc="outside lower center",
               ncol=4, frameon=False)
    return fig


# -- topology -----------------------------------------------------------------

CENTRE, RADIUS = np.array([0.5, 0.5]), 0.36


def _on_arc(ips, first_deg, last_deg, positions) -> None:
    for i, ip in enumerate(ips):
        share = (i + 1) / (len(ips) + 1)
        angle = math.radians(first_deg + (last_deg - first_deg) * share)
        positions[ip] = tuple(CENTRE + RADIUS * np.array([math.cos(angle), math.sin(angle)]))


def _host_layout(ips_by_component: dict[str, list[str]]) -> dict[str, tuple[float, float]]:
    """The JobManager in the middle, TaskManagers on the lower arc, clients on the upper
    arc, other hosts (ZooKeeper, external services, unknown) on the sides."""
    positions: dict[str, tuple[float, float]] = {}
    masters = ips_by_component.get("jobmanager", [])
    for i, ip in enumerate(masters):  # several JobManagers (HA) share the middle
        positions[ip] = (0.5 + 0.16 * (i - (len(masters) - 1) / 2), 0.5)
    workers = ips_by_component.get("taskmanager", [])
    upper = ips_by_component.get("client", [])
    others = ips_by_component.get("other", [])
    if len(workers) <= 4:
        _on_arc(workers, 190, 350, positions)
        _on_arc(upper, 30, 150, positions)
        _on_arc(others[::2], 150, 210, positions)
        _on_arc(others[1::2], 30, -30, positions)
    else:  # a big cluster: TaskManagers round the lower two thirds, the rest on top
        _on_arc(workers, 155, 385, positions)
        _on_arc(upper + others, 25, 155, positions)
    return positions


def _bezier(p0, p1, bend: float, samples: int = 61) -> np.ndarray:
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    control = (p0 + p1) / 2 + bend * np.array([d[1], -d[0]])
    t = np.linspace(0, 1, samples)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * control + t ** 2 * p1


def _overlaps(box, placed, pad=2.0) -> bool:
    return any(box.x0 - pad < other.x1 and other.x0 < box.x1 + pad
               and box.y0 - pad < other.y1 and other.y0 < box.y1 + pad for other in placed)


def topology(analysis, figsize=(10, 8.5)) -> Figure:
    """Hosts as nodes, one arrow (client -> server) per channel and verdict.

    The arrow's colour is the verdict, its width grows with the bytes, and its
    label names the channel and the number of flows. Labels are moved along
    their arrow until they overlap neither another label nor a host.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import Circle

    flows = analysis.flows
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # a renderer for measuring labels; nothing is shown
    title = f"Cluster topology: {_capture_name(analysis)}"
    if flows.empty:
        return _empty(fig, title, "no flows in the capture")

    component = dict(zip(analysis.hosts["ip"], analysis.hosts["component"]))
    flows, merged = _fewer_hosts(flows, component)
    ips = list(dict.fromkeys(list(flows["client_ip"]) + list(flows["server_ip"])))
    ips_by_component: dict[str, list[str]] = {}
    for ip in sorted(ips, key=_ip_key):
        kind = component.get(ip)
        kind = kind if kind in COMPONENT_LABELS else "other"
        ips_by_component.setdefault(kind, []).append(ip)
    positions = _host_layout(ips_by_component)

    frame = flows.assign(total=flows["bytes_c2s"].fillna(0) + flows["bytes_s2c"].fillna(0))
    frame["pair"] = [tuple(sorted((c, s), key=_ip_key))
                     for c, s in zip(frame["client_ip"], frame["server_ip"])]
    # a big cluster gets one line per host pair and channel, whichever side connected
    both_ways = len(positions) > 6
    keys = ["pair", "role", "verdict"] if both_ways else ["client_ip", "server_ip", "role",
                                                          "verdict"]
    edges = (frame.groupby(keys, dropna=False)
             .agg(flows=("flow_id", "count"), total=("total", "sum"),
                  first_client=("client_ip", "first"),
                  directions=("client_ip", "nunique")).reset_index())
    edges["client_ip"] = edges["first_client"]
    if "pair" not in edges.columns:
        edges["pair"] = [tuple(sorted((c, s), key=_ip_key))
                         for c, s in zip(edges["client_ip"], edges["server_ip"])]
    edges = edges.sort_values(["pair", "role", "client_ip"]).reset_index(drop=True)

    ax = fig.add_subplot()
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.02, 0.98)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=12, parse_math=False)
    spacing = min((math.dist(a, b) for a, b in _pairs(list(positions.values()))),
                  default=1.0)
    node_radius = min(0.06, 0.42 * spacing)
    node_font = 9 if node_radius >= 0.05 else 7
    max_total = max(float(edges["total"].max()), 1.0)

    for ip, (x, y) in positions.items():
        kind = component.get(ip)
        name = COMPONENT_LABELS.get(kind, kind or "other host")
        if ip == OTHER_HOSTS:
            name, ip = f"{merged:,} other", "hosts"
        fill = {"jobmanager": "#F0E442", "taskmanager": "#CFE8F3", "client": "#E8E8E8"}
        ax.add_patch(Circle((x, y), node_radius, facecolor=fill.get(kind, "#FFFFFF"),
                            edgecolor="#333333", linewidth=1.2, zorder=4))
        ax.text(x, y, f"{name}\n{ip}", ha="center", va="center", fontsize=node_font, zorder=5,
                fontweight="bold" if kind == "jobmanager" else "normal", parse_math=False)

    curves = []
    for pair, group in edges.groupby("pair", sort=False):
        count = len(group)
        for slot, edge in enumerate(group.itertuples(index=False)):
            # the edges of one host pair fan out around the straight line; bends are
            # taken relative to the sorted pair so opposite directions do not overlap
            bend = (slot - (count - 1) / 2) * 0.28 if count > 1 else 0.0
            curve = _bezier(positions[pair[0]], positions[pair[1]], bend)
            if edge.client_ip != pair[0]:
                curve = curve[::-1]
            start, end = curve[0], curve[-1]
            keep = [p for p in curve if np.hypot(*(p - start)) > node_radius * 1.1
                    and np.hypot(*(p - end)) > node_radius * 1.2]
            if len(keep) < 2:
                continue
            width = 1.2 + 4.0 * math.log1p(edge.total) / math.log1p(max_total)
            style = "<|-|>" if edge.directions > 1 else "-|>"
            ax.add_patch(FancyArrowPatch(path=Path(np.array(keep)), arrowstyle=style,
                                         mutation_scale=14, linewidth=width,
                                         color=verdict_colour(edge.verdict), zorder=1))
            curves.append((curve, edge))

    fig.canvas.draw()  # settle the layout so label boxes are measured where they end up
    renderer = fig.canvas.get_renderer()
    placed = [Bbox(ax.transData.transform([(x - node_radius, y - node_radius),
                                           (x + node_radius, y + node_radius)]))
              for x, y in positions.values()]  # the host circles
    placed += [t.get_window_extent(renderer) for t in ax.texts]  # their names
    omitted = 0
    # the biggest channels get their labels first; one that fits nowhere is left out
    for curve, edge in sorted(curves, key=lambda item: -item[1].total):
        label = f"{edge.role} ×{edge.flows}" if edge.flows > 1 else str(edge.role)
        text = ax.text(0, 0, label, ha="center", va="center", fontsize=8.5, zorder=3,
                       parse_math=False,
                       bbox=dict(boxstyle="round,pad=0.25", facecolor="white",
                                 edgecolor=verdict_colour(edge.verdict), linewidth=0.8))
        for t in (0.5, 0.42, 0.58, 0.34, 0.66, 0.28, 0.72, 0.22, 0.78):
            point = curve[int(round(t * (len(curve) - 1)))]
            text.set_position(point)
            box = text.get_window_extent(renderer).expanded(1.04, 1.1)
            if not _overlaps(box, placed):
                placed.append(box)
                break
        else:
            text.remove()
            omitted += 1
    if omitted:
        ax.text(0.5, 0.0, f"{omitted} of {len(curves)} channel labels left out for lack of "
                "room (analysis.channels has them all)", transform=ax.transAxes, ha="center",
                va="bottom", fontsize=8, color="#555555")

    handles = _legend_handles(edges["verdict"])
    handles.append(Line2D([], [], color="#555555", marker=">", linestyle="-",
                          label="arrow: client → server (both ends: both ways); width: bytes"
                          if both_ways else "arrow: client → server; width: bytes"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    return fig


# Hosts drawn one by one; past this, the least busy hosts outside the cluster are drawn
# as one node (a capture of 10,000 clients drew 10,000 circles and compared every pair
# of them for spacing: minutes, for a picture nobody could read).
MAX_TOPOLOGY_HOSTS = 30
OTHER_HOSTS = "other hosts"


def _fewer_hosts(flows: pd.DataFrame, component: dict) -> tuple[pd.DataFrame, int]:
    """`flows` with all but MAX_TOPOLOGY_HOSTS - 1 hosts renamed OTHER_HOSTS, and how
    many hosts that node stands for. Flink's own hosts are kept first, then the hosts
    that moved the most bytes."""
    total = flows["bytes_c2s"].fillna(0) + flows["bytes_s2c"].fillna(0)
    volume: dict = {}
    for ip, size in zip(list(flows["client_ip"]) + list(flows["server_ip"]),
                        list(total) * 2):
        volume[ip] = volume.get(ip, 0) + size
    if len(volume) <= MAX_TOPOLOGY_HOSTS:
        return flows, 0
    cluster = ("jobmanager", "taskmanager")
    ranked = sorted(volume, key=lambda ip: (component.get(ip) not in cluster, -volume[ip],
                                            _ip_key(ip)))
    kept = set(ranked[:MAX_TOPOLOGY_HOSTS - 1])
    rename = {ip: OTHER_HOSTS for ip in ranked[MAX_TOPOLOGY_HOSTS - 1:]}
    flows = flows.assign(client_ip=flows["client_ip"].map(lambda ip: rename.get(ip, ip)),
                         server_ip=flows["server_ip"].map(lambda ip: rename.get(ip, ip)))
    return flows, len(volume) - len(kept)


def _pairs(items):
    return ((a, b) for i, a in enumerate(items) for b in items[i + 1:])


def _ip_key(ip):
    import ipaddress
    try:
        return (0, int(ipaddress.ip_address(ip)), "")
    except (ValueError, TypeError):
        return (1, 0, str(ip))


# -- comparison ---------------------------------------------------------------

def _secret_counts(analysis) -> pd.Series:
    secrets = secret_findings(analysis)
    if secrets.empty:
        return pd.Series(dtype=int)
    return secrets.groupby("role").size()


def compare(before, after, labels=None, figsize=None) -> Figure:
    """Two analyses of one cluster, channel by channel: the verdict mix of the bytes
    (left) and the number of secret values readable on the wire (right)."""
    labels = labels or (f"before: {_capture_name(before)}", f"after: {_capture_name(after)}")
    roles = sorted(set(before.flows["role"]) | set(after.flows["role"]))
    fig = Figure(figsize=figsize or (11, 1.8 + 0.75 * max(1, len(roles))),
                 layout="constrained")
    title = "Before and after, channel by channel"
    if not roles:
        return _empty(fig, title, "no flows in either capture")

    shares, verdicts_seen = {}, set()
    for which, analysis in enumerate((before, after)):
        if analysis.flows.empty:
            continue
        by_bytes, _ = _per_role_verdict(analysis.flows)
        for role, row in by_bytes.iterrows():
            total = row.sum()
            shares[(role, which)] = {v: (row[v] / total if total else 0.0)
                                     for v in by_bytes.columns}
            verdicts_seen |= {v for v in by_bytes.columns if row[v] > 0}

    ax_mix, ax_secrets = fig.subplots(1, 2, sharey=True, width_ratios=[3, 2])
    positions, ticklabels = [], []
    for i, role in enumerate(reversed(roles)):
        base = i * 3.0
        for which in (0, 1):
            y = base + (1 - which)  # before above after
            share = shares.get((role, which))
            analysis = (before, after)[which]
            mine = analysis.flows[analysis.flows["role"] == role]
            if len(mine):
                size = human_bytes(int((mine["bytes_c2s"] + mine["bytes_s2c"]).sum()))
                ax_mix.text(0.99, y, f"{len(mine)} flows, {size}", ha="right", va="center",
                            fontsize=8, color="white", zorder=3)
            if share is None:
                ax_mix.text(0.01, y, "not in this capture", va="center", fontsize=8,
                            color="#777777")
            else:
                left = 0.0
                for verdict in VERDICTS:
                    value = share.get(verdict, 0.0)
                    if value:
                        ax_mix.barh(y, value, left=left, height=0.8,
                                    color=verdict_colour(verdict), edgecolor="white",
                                    linewidth=0.5)
                        left += value
            positions.append(y)
            ticklabels.append(f"{role} · {'before' if which == 0 else 'after'}")
        for which, analysis in enumerate((before, after)):
            y = base + (1 - which)
            count = int(_secret_counts(analysis).get(role, 0))
            colour = VERDICT_COLOURS["plaintext"]
            ax_secrets.barh(y, count, height=0.8, color=colour)
            ax_secrets.text(count, y, f" {count}", va="center", fontsize=8.5)
    ax_mix.set_yticks(positions, ticklabels, fontsize=9, parse_math=False)
    ax_mix.set_xlim(0, 1)
    ax_mix.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0%}"))
    ax_mix.set_xlabel("share of the channel's bytes, by verdict")
    most = max([int(_secret_counts(a).max()) if len(_secret_counts(a)) else 0
                for a in (before, after)] + [1])
    ax_secrets.set_xlim(0, most * 1.2)
    ax_secrets.set_xlabel("secret values readable (findings)")
    ax_secrets.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    for ax in (ax_mix, ax_secrets):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", color="#eeeeee")
        ax.set_axisbelow(True)
    fig.suptitle(f"{title}\n{labels[0]}  →  {labels[1]}", fontsize=11, parse_math=False)
    fig.legend(handles=_legend_handles(verdicts_seen or {"tls"}), loc="outside lower center",
               ncol=4, frameon=False)
    return fig


class PlotAccessor:
    """`analysis.plot.exposure()` and friends; each call returns a new Figure."""

    def __init__(self, analysis):
        self._analysis = analysis

    def exposure(self, **kwargs) -> Figure:
        return exposure(self._analysis, **kwargs)

    def timeline(self, **kwargs) -> Figure:
        return timeline(self._analysis, **kwargs)

    def topology(self, **kwargs) -> Figure:
        return topology(self._analysis, **kwargs)

    def compare(self, after, **kwargs) -> Figure:
        """This analysis as "before", `after` as the second capture."""
        return compare(self._analysis, after, **kwargs)

    def __repr__(self) -> str:
        return "<plots: exposure(), timeline(), topology(), compare(other)>"


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (for embedding in a report)."""
    import io
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


__all__ = ["VERDICT_COLOURS", "PlotAccessor", "compare", "exposure", "figure_png",
           "secret_findings", "timeline", "topology"]
