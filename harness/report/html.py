"""HTML building blocks of the report page: escaping, number formats, inline images, tables, its style."""

from __future__ import annotations

import base64
import html

import numpy as np


CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}img.px{image-rendering:pixelated;width:96px;height:96px}.plots img{margin-right:8px}
.hit{color:#080;font-weight:bold}.pass{color:#a60}.miss{color:#999}.note{color:#555;font-size:13px}div.s{max-width:360px;overflow-wrap:anywhere}
.verdict{font-size:15px;background:#f7f7f7;padding:6px 10px;border-left:4px solid #888}dt{font-weight:bold;margin-top:6px}
"""


def esc(x) -> str:
    return html.escape("" if x is None else str(x))


def fmt(x, spec=".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return "<span class=miss>-</span>"
    return f'<img class="px" alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def plot_img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{b64}">'


def html_table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
