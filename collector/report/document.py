"""A report rendered: a multi-page A4 PDF and a page PNG (matplotlib), and an HTML file (Jinja2).

matplotlib lays the PDF out because it already draws the charts and ships DejaVu Sans, whose
glyphs cover Vietnamese: the PDF embeds it as TrueType (Type 42) with its Unicode map, so the
text is searchable and reads back ("KHÔNG ĐẠT") on any machine, with no font installed.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Final

import jinja2
import markupsafe
import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from collector.report.content import Block, Chart, Table, Text, blocks_of, day, title
from collector.report.findings import Finding, Report
from contract.i18n import _, number

A4_INCHES: Final = (8.27, 11.69)
LEFT, RIGHT, TOP, BOTTOM = 0.08, 0.92, 0.95, 0.06
POINTS_HIGH: Final = A4_INCHES[1] * 72
WIDTH_POINTS: Final = (RIGHT - LEFT) * A4_INCHES[0] * 72
# DejaVu Sans' mean advance on Vietnamese text, in em (bold is wider): what a line holds.
EM_SHARE: Final = 0.57
BOLD_EM_SHARE: Final = 0.64
SIZES: Final = {"heading": 14.0, "subheading": 11.0, "text": 9.0, "strong": 10.0, "mono": 7.5}
TABLE_SIZE: Final = 8.0
CHART_HEIGHT: Final = 0.24
TEMPLATE: Final = "report.html.j2"


def _line_height(size: float) -> float:
    return size * 1.4 / POINTS_HIGH


def _wrap(text: str, size: float, share: float = 1.0, *, bold: bool = False) -> list[str]:
    width = max(8, int(WIDTH_POINTS * share / (size * (BOLD_EM_SHARE if bold else EM_SHARE))))
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def draw_chart(axes: Axes, chart: Chart, finding: Finding) -> None:
    """The per-day means or the distribution of counted samples, with the regulation's line."""
    target = finding.target_mbps
    if chart.kind == "daily":
        # Days as ordinals: a plain number axis, labelled in the reader's date format.
        days = [mean.day.toordinal() for mean in finding.daily]
        axes.plot(days, [mean.mean_mbps for mean in finding.daily], marker="o", color="#1f5fa8")
        axes.set_ylabel(_("mean download (Mb/s)"))
        axes.tick_params(axis="x", labelrotation=30, labelsize=7)
        # The whole period, whole days only, even where no day has a counted sample.
        period = finding.period
        axes.set_xlim(period.first_day.toordinal() - 0.5, period.last_day.toordinal() + 0.5)
        axes.xaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=10, integer=True))
        axes.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(_day_tick))
    else:
        rates = finding.counted_download_mbps
        axes.hist(rates, bins=min(40, max(5, len(rates) // 20)), color="#7fa7d9")
        axes.set_xlabel(_("download (Mb/s)"))
        axes.set_ylabel(_("samples"))
    if target is not None:
        line = axes.axhline if chart.kind == "daily" else axes.axvline
        line(
            target,
            color="#b22222",
            linestyle="--",
            label=_("target {rate} Mb/s").format(rate=number(target, 0)),
        )
        axes.legend(fontsize=7, loc="best")
    axes.set_title(chart.title, fontsize=9)
    axes.grid(visible=True, alpha=0.3)
    axes.tick_params(labelsize=7)


def _day_tick(value: float, _position: int) -> str:
    return day(date.fromordinal(max(1, round(value))))


class _Pages:
    """A4 pages filled top-down; a block that does not fit starts a new page."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.pages: list[Figure] = []
        self.y = 0.0
        self._new_page()

    def _new_page(self) -> None:
        self.pages.append(Figure(figsize=A4_INCHES))
        self.y = TOP

    def _room(self, height: float) -> Figure:
        if self.y - height < BOTTOM and self.y < TOP:
            self._new_page()
        return self.pages[-1]

    def text(self, block: Text) -> None:
        size = SIZES[block.kind]
        bold = block.kind in {"heading", "subheading", "strong"}
        lines = _wrap(block.text, size, bold=bold)
        height = _line_height(size) * len(lines)
        gap = _line_height(size) * (0.6 if block.kind in {"heading", "subheading"} else 0.2)
        page = self._room(height + gap)
        self.y -= gap if self.y < TOP else 0.0
        page.text(
            LEFT,
            self.y,
            "\n".join(lines),
            fontsize=size,
            va="top",
            linespacing=1.25,
            weight="bold" if bold else "normal",
            family="DejaVu Sans Mono" if block.kind == "mono" else "DejaVu Sans",
        )
        self.y -= height

    def table(self, block: Table) -> None:
        line = _line_height(TABLE_SIZE)
        for index, row in enumerate((block.header, *block.rows)):
            cells = [
                _wrap(cell, TABLE_SIZE, share, bold=index == 0)
                for cell, share in zip(row, block.widths, strict=True)
            ]
            height = line * max(len(cell) for cell in cells) + line * 0.3
            page = self._room(height)
            x = LEFT
            for cell, share in zip(cells, block.widths, strict=True):
                page.text(
                    x,
                    self.y,
                    "\n".join(cell),
                    fontsize=TABLE_SIZE,
                    va="top",
                    linespacing=1.2,
                    weight="bold" if index == 0 else "normal",
                )
                x += share * (RIGHT - LEFT)
            self.y -= height
            page.add_artist(
                mpl.lines.Line2D(
                    [LEFT, RIGHT], [self.y + line * 0.15] * 2, linewidth=0.3, color="#999999"
                )
            )
        self.y -= line * 0.5

    def chart(self, block: Chart) -> None:
        page = self._room(CHART_HEIGHT)
        # Room above for the title and below for the day labels.
        axes = page.add_axes(
            (LEFT + 0.06, self.y - CHART_HEIGHT + 0.06, RIGHT - LEFT - 0.06, CHART_HEIGHT - 0.09)
        )
        draw_chart(axes, block, self.report.findings[block.finding])
        self.y -= CHART_HEIGHT

    def add(self, block: Block) -> None:
        if isinstance(block, Text):
            self.text(block)
        elif isinstance(block, Table):
            self.table(block)
        else:
            self.chart(block)

    def footers(self) -> None:
        for number_of_page, page in enumerate(self.pages, start=1):
            page.text(
                LEFT,
                BOTTOM / 2,
                _("{title} · {area} · page {page} / {pages}").format(
                    title=title(),
                    area=self.report.area_name,
                    page=number_of_page,
                    pages=len(self.pages),
                ),
                fontsize=7,
                color="#555555",
            )


@contextmanager
def _fonts() -> Iterator[None]:
    # The font matplotlib ships; TrueType in the PDF, text kept as text in the SVG.
    with mpl.rc_context({"font.family": "DejaVu Sans", "pdf.fonttype": 42, "svg.fonttype": "none"}):
        yield


def pages_of(report: Report) -> list[Figure]:
    with _fonts():
        pages = _Pages(report)
        for block in blocks_of(report):
            pages.add(block)
        pages.footers()
        return pages.pages


def write_pdf(pages: list[Figure], path: Path) -> None:
    with _fonts(), PdfPages(path, metadata={"Title": title(), "Creator": "qosfleet"}) as pdf:
        for page in pages:
            pdf.savefig(page)


def write_page_png(page: Figure, path: Path, dpi: int = 100) -> None:
    with _fonts():
        page.savefig(path, format="png", dpi=dpi)


def _svg(chart: Chart, finding: Finding) -> str:
    with _fonts():
        figure = Figure(figsize=(7.0, 2.6))
        draw_chart(figure.add_subplot(), chart, finding)
        figure.tight_layout()
        out = io.StringIO()
        figure.savefig(out, format="svg")
    text = out.getvalue()
    return text[text.index("<svg") :]


def render_html(report: Report, blocks: list[Block]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("collector.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    # matplotlib's own SVG, which escapes the text it draws.
    charts = {
        id(block): markupsafe.Markup(_svg(block, report.findings[block.finding]))  # noqa: S704
        for block in blocks
        if isinstance(block, Chart)
    }
    return environment.get_template(TEMPLATE).render(
        title=title(),
        language=report.language,
        blocks=blocks,
        charts=charts,
        chart_id=id,
    )
