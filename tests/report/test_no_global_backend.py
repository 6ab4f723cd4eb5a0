"""The report draws on Figure objects with the Agg canvas: importing it or writing a report leaves the
user's matplotlib backend alone and never loads pyplot (issue 9, item 9: `matplotlib.use` at import went)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_and_writing_the_report_keeps_the_backend(tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import numpy as np, pandas as pd, cv2
import medgap.report.html as h
from medgap.report import write_report
from medgap.stats import compare_groups
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
rows = []
for g, levels in {{"a": [10, 90, 50], "b": [200, 120, 160]}}.items():
    for v in levels:
        p = r"{tmp_path}" + f"/{{g}}{{v}}.png"
        cv2.imwrite(p, np.full((20, 20), v, np.uint8))
        rows.append(dict(item_id=p, path=p, frame=np.nan, group=g, level=float(v), error=None))
df = pd.DataFrame(rows)
doc = write_report(r"{tmp_path}/r.html", df, {{"level": compare_groups(df, "level")}}).read_text()
assert doc.count('src="data:image/png;base64,') == 2
assert matplotlib.get_backend() == "svg" and "matplotlib.pyplot" not in sys.modules
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
