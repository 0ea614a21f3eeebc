"""The aging chart of `followupd report --png/--svg`: stacked bars per client, with matplotlib.

matplotlib is an optional extra (``pip install 'followupd[charts]'``), imported
here only when a chart is asked for, so that no other command pays for it.
The figure is drawn on the Agg canvas, never through pyplot (no global state,
no GUI backend). The SVG is reproducible (a fixed hash salt for its ids, no date
in its metadata) and keeps its text as text; the PNG carries no date either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from followupd.domain.receivables import Bucket, ClientReceivables, Receivables
from followupd.errors import FollowupdError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TOP_CLIENTS = 8  # per currency; the others share one bar
# from green (not due) to dark red (over 90 days)
COLOURS = {
    Bucket.NOT_DUE: "#4daf4a",
    Bucket.DAYS_1_30: "#fed976",
    Bucket.DAYS_31_60: "#fd8d3c",
    Bucket.DAYS_61_90: "#e31a1c",
    Bucket.OVER_90: "#800026",
}
SVG_SALT = "followupd"  # the SVG's ids, fixed: the same report, the same file
INSTALL_HINT = "pip install 'followupd[charts]'"


class ChartsMissing(FollowupdError):
    """matplotlib, the optional extra that draws charts, is not installed."""


def require_matplotlib() -> None:
    """Fail now, before any work, when a chart is asked for and cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ChartsMissing(
            f"a chart needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None


@dataclass(frozen=True)
class Bar:
    label: str
    amounts: Sequence[Decimal]  # in the order of Bucket


def bars(rows: Sequence[ClientReceivables], top: int = TOP_CLIENTS) -> list[Bar]:
    """The clients of one currency that owe something, largest first; past `top`, one bar."""
    owing = [row for row in rows if row.aging.unpaid > 0]
    owing.sort(key=lambda row: (-row.aging.unpaid, row.client))
    shown = [Bar(row.name, [row.aging.amounts[b] for b in Bucket]) for row in owing[:top]]
    rest = owing[top:]
    if len(rest) == 1:
        shown.append(Bar(rest[0].name, [rest[0].aging.amounts[b] for b in Bucket]))
    elif rest:
        summed = [sum((row.aging.amounts[b] for row in rest), Decimal(0)) for b in Bucket]
        shown.append(Bar(f"{len(rest)} other clients", summed))
    return shown


def draw(report: Receivables, path: Path, image_format: str, owner: str | None) -> None:
    """Write the aging chart of `report` to `path` as `image_format` ("png" or "svg")."""
    require_matplotlib()
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_currency = {
        total.currency: bars([row for row in report.clients if row.currency == total.currency])
        for total in report.currencies
        if total.aging.unpaid > 0
    }
    heights = [len(shown) * 0.4 + 1.0 for shown in by_currency.values()]
    # the SVG's text stays text (searchable, smaller), in the viewer's fonts
    with rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.size": 9}):
        figure = Figure(figsize=(9, sum(heights) + 1.1), layout="constrained")
        FigureCanvasAgg(figure)
        whose = f", owner {owner}" if owner else ""
        figure.suptitle(f"Receivables by days past due on {report.day}{whose}", fontweight="bold")
        if not by_currency:
            figure.set_size_inches(9, 2)
            figure.text(0.5, 0.5, "nothing unpaid", ha="center", va="center")
        else:
            axes = figure.subplots(len(by_currency), 1, squeeze=False, height_ratios=heights)
            for (currency, shown), (ax,) in zip(by_currency.items(), axes, strict=True):
                _stack(ax, currency, shown)
            handles, labels = axes[0][0].get_legend_handles_labels()
            figure.legend(
                handles,
                labels,
                loc="outside lower center",
                ncols=len(Bucket),
                title="days past due",
                fontsize=8,
                title_fontsize=8,
                frameon=False,
            )
        metadata = {"Date": None} if image_format == "svg" else {"Software": None}
        figure.savefig(path, format=image_format, dpi=120, metadata=metadata)


def _stack(ax: Axes, currency: str, shown: Sequence[Bar]) -> None:
    labels = [bar.label if len(bar.label) <= 30 else bar.label[:29] + "…" for bar in shown]
    positions = range(len(shown))
    left = [0.0] * len(shown)
    for number, bucket in enumerate(Bucket):
        widths = [float(bar.amounts[number]) for bar in shown]
        ax.barh(positions, widths, 0.6, left=left, color=COLOURS[bucket], label=bucket.label,
                edgecolor="white", linewidth=0.5)  # fmt: skip
        left = [start + width for start, width in zip(left, widths, strict=True)]
    for position, total in zip(positions, left, strict=True):
        ax.annotate(f" {total:,.2f}", (total, position), va="center", fontsize=8)
    ax.set_yticks(list(positions), labels)
    ax.set_ylim(len(shown) - 0.3, -0.7)  # the largest on top
    ax.set_xlabel(f"unpaid ({currency})")
    ax.set_ylabel("client")
    ax.set_title(f"{currency}: {sum(left):,.2f} unpaid", loc="left", fontsize=9)
    ax.set_xlim(0, max(left) * 1.18)
    ax.xaxis.set_major_formatter("{x:,.0f}")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
