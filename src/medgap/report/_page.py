"""What every medgap HTML page shares: the style sheet and how a table is written (the study report, the
explanation page)."""

from __future__ import annotations

import pandas as pd

PAGE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;color:#222;
line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem}h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child,.overview td:nth-child(2),.overview th:nth-child(2){text-align:left}
thead th{border-bottom:2px solid #999}
.muted{color:#555;font-size:.9rem}.stat{font-family:ui-monospace,Menlo,monospace;font-size:.85rem}
.caveat{background:#fff8e6;border-left:4px solid #e0a800;padding:.5rem .8rem}
.methods p{max-width:60rem}figure{margin:1rem 0}figure img{max-width:100%}
figcaption{font-size:.9rem;color:#333;max-width:60rem}nav ol{columns:2}
.thumbs{display:flex;flex-wrap:wrap;gap:.4rem;margin:.3rem 0 1rem}.thumb{width:120px;font-size:.75rem;
text-align:center;word-break:break-all}.thumb img{width:120px;height:120px;object-fit:contain;background:#111;
border-radius:3px}.row{display:flex;gap:2rem;flex-wrap:wrap}
details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
"""


def html_table(df: pd.DataFrame, css: str | None = None) -> str:
    """``df`` as an HTML table: no index, escaped, empty cells for missing values."""
    return df.to_html(index=False, border=0, escape=True, na_rep="", classes=css)
