"""The SVG building blocks and number formats of the monitoring pages, shared by the daily report and the dashboard.

Pure functions: numbers in, text or escaped SVG (Markup) out. No storage, no documents.
"""

from __future__ import annotations

import math
from html import escape
from typing import TypeGuard

from markupsafe import Markup


def svg_element(width: int, height: int, body: str, *, cls: str, label: str, **data) -> Markup:
    """An SVG element around already-escaped `body`, marked safe for the templates."""
    attrs = "".join(f' data-{k}="{escape(str(v))}"' for k, v in data.items())
    return Markup(
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}"{attrs}>{body}</svg>'
    )


def format_number(value, digits: int = 4) -> str:
    """A number for people: thousands separators for large ones, `digits` significant otherwise."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 10**digits:
        return f"{v:,.0f}"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.{digits}g}"


def format_share(share) -> str:
    if not is_finite_number(share):
        return "—"
    return f"{100 * share:.2f}%" if 0 < abs(share) < 0.001 else f"{100 * share:.1f}%"


def is_finite_number(value: object) -> TypeGuard[float]:
    """A real number that is not a bool, NaN or infinite: one a chart can place."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `x`."""
    if x <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if x <= m * power * (1 + 1e-9))


def axis_ticks(lo: float, hi: float) -> list[float]:
    """Round tick values covering [lo, hi]; the first and the last are the ends of the axis."""
    if hi <= lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_ceiling((hi - lo) / 4)
    return [k * step for k in range(math.floor(lo / step), math.ceil(hi / step) + 1)]


def y_grid(values: list[float], y_of, fmt, x1: float, x2: float) -> str:
    """Horizontal grid lines at `values` across x1..x2, each labelled by `fmt` right-aligned left of x1."""
    out = ""
    for v in values:
        y = y_of(v)
        out += (
            f'<line class="grid" x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}"/><text x="{x1 - 6}" y="{y + 3:.1f}" '
            f'text-anchor="end">{escape(fmt(v))}</text>'
        )
    return out
