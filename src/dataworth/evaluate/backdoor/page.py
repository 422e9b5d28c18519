"""The backdoor experiment's report page: the attack check, then precision and recall per ``c``.

A single self-contained HTML file (the figure inlined as SVG), so the run folder can be opened
anywhere without the study's report machinery.
"""

from __future__ import annotations

import html
import io
from typing import Any

from dataworth.report.figures import new_figure

# The page reads an experiment.BackdoorReport (typed Any: that module imports this one to save
# its page).
BackdoorReport = Any

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}"
    ".fail{color:#b00;font-weight:bold}"
)


def _figure_svg(report: BackdoorReport) -> str:
    """Mean precision and recall against ``c`` per method, as inline SVG."""
    fig, ax = new_figure(9.0, 3.6)
    fig.clear()
    axes = fig.subplots(1, 2)
    methods = list(dict.fromkeys(r["method"] for r in report.rows))
    for ax, key in zip(axes, ("precision", "recall"), strict=True):
        for method in methods:
            rows = [r for r in report.rows if r["method"] == method]
            ax.plot([r["c"] for r in rows], [r[key] for r in rows], marker="o", label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("c  (m = c k log2 N subsets)")
        ax.set_ylabel(f"mean {key}")
        ax.set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.find("<svg") :]


def backdoor_page(report: BackdoorReport) -> str:
    """The HTML of ``backdoor.html``."""
    a, s = report.attack, report.settings
    works = a.success > 0.9 and a.accuracy_drop <= 0.03
    verdict = (
        "The attack works: the experiment can be read."
        if works
        else '<span class="fail">The attack is weak (success at most 90% or clean accuracy down '
        "more than 3 points): the precision and recall below mean little.</span>"
    )
    lines = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Backdoor experiment</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Backdoor experiment (Lin et al., ICML 2022, in miniature)</h1>",
        f"<p>{s['n_train']} training images, {s['poisons']} poisoned (a "
        f"{int(len(s['patch']) ** 0.5)}x{int(len(s['patch']) ** 0.5)} patch of value "
        f"{s['patch_value']:g} in the top-left corner, relabelled {s['target_class']}); "
        f"{s['queries']} patched test images explained, one LASSO each. Network: "
        f"<code>{html.escape(s['learner'])}</code>.</p>",
        "<h2>Attack check</h2><table><tr><th>measure</th><th>value</th></tr>",
        f"<tr><td>attack success ({a.n_patched} patched test images)</td>"
        f"<td>{a.success:.1%}</td></tr>",
        f"<tr><td>mean P(target) on them</td><td>{a.mean_target_probability:.3f}</td></tr>",
        f"<tr><td>clean accuracy, poisoned network ({a.n_clean} images)</td>"
        f"<td>{a.clean_accuracy:.1%}</td></tr>",
        f"<tr><td>clean accuracy, unpoisoned network</td>"
        f"<td>{a.clean_accuracy_unpoisoned:.1%}</td></tr>",
        f"</table><p>{verdict}</p>",
        "<h2>Poisons found, per query, averaged over the queries</h2>",
        "<p>AME selects by plain Knockoff at q = 0 (it is not told k); every other method is "
        "given k and selects its k highest scores per query. An empty selection counts as "
        "precision 1 (no false discovery) and recall 0.</p>",
        "<table><tr><th>c</th><th>subsets</th><th>method</th><th>models</th><th>precision</th>"
        "<th>recall</th><th>empty</th><th>seconds</th></tr>",
    ]
    for r in report.rows:
        lines.append(
            f"<tr><td>{r['c']}</td><td>{r['subsets']}</td><td>{r['method']}</td>"
            f"<td>{r['models']}</td><td>{r['precision']:.2f}</td><td>{r['recall']:.2f}</td>"
            f"<td>{r['empty']}</td><td>{r['seconds']:.1f}</td></tr>"
        )
    lines += ["</table>", _figure_svg(report), "</body></html>"]
    return "\n".join(lines) + "\n"
