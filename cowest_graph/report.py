"""The improvement report: `DIR/report.json` and a self-contained `DIR/report.html` (an inline SVG
chart, no script and nothing fetched at view time), plus `DIR/report.png` where matplotlib is
installed. Rewritten after every round from the round records."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

_BULKY = ("correct", "answers")


def report_rows(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per round record (held-out results without per-question lists).

    Example:
        >>> [r["promoted"] for r in report_rows(read_rounds("adapters"))]  # doctest: +SKIP
        [True, False, False]
    """
    rows = []
    for rec in rounds:
        results = {
            k: {f: v for f, v in r.items() if f not in _BULKY} for k, r in (rec.get("results") or {}).items()
        }
        gate = rec.get("gate") or {}
        rows.append(
            {
                "round": rec["round"],
                "parent": Path(rec.get("parent") or "").name,
                "candidate": Path(rec["candidate"]).name if rec.get("candidate") else None,
                "runs_used": len(rec.get("run_ids") or []),
                "pairs": rec.get("pairs", 0),
                "mean_delta": rec.get("mean_delta"),
                "dpo": rec.get("dpo") or {},
                "results": results,
                "paired": gate.get("paired"),
                "promoted": bool(rec.get("promoted")),
                "reasons": gate.get("reasons") or ([rec["skipped"]] if rec.get("skipped") else []),
                "examples": rec.get("examples") or [],
                "done": bool(rec.get("done")),
            }
        )
    return rows


def write_report(root: str | Path, rounds: list[dict[str, Any]]) -> Path:
    """Write `report.json`, `report.html` (and `report.png`) under `root` from the round records;
    return the HTML path.

    Example:
        >>> write_report("adapters", read_rounds("adapters"))  # doctest: +SKIP
        PosixPath('adapters/report.html')
    """
    root = Path(root)
    rows = report_rows(rounds)
    (root / "report.json").write_text(json.dumps(rows, indent=2, default=str))
    page = root / "report.html"
    page.write_text(_html(rows))
    _png(rows, root / "report.png")
    return page


def _points(rows: list[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    return [
        (r["round"], k, r["results"][k]) for r in rows for k in ("current", "candidate") if k in r["results"]
    ]


def _svg(rows: list[dict[str, Any]], width: int = 640, height: int = 300) -> str:
    pad, n = 48, max(1, len(rows))
    x0, x1, y0, y1 = pad, width - 16, height - pad, 16

    def x(i: int, side: int) -> float:
        return x0 + (x1 - x0) * (i - 0.5 + side * 0.15) / n

    def y(v: float) -> float:
        return y0 - (y0 - y1) * v

    parts = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
    ]
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>')
    parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>')
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{x0 - 6}" y="{y(v) + 4}" font-size="11" text-anchor="end">{v:.2f}</text>')
    for rnd, kind, res in _points(rows):
        side = -1 if kind == "current" else 1
        colour = "#888" if kind == "current" else "#1f6feb"
        cx = x(rnd, side)
        low, high = y(res["ci_low"]), y(res["ci_high"])
        parts.append(f'<line class="ci" x1="{cx}" y1="{low}" x2="{cx}" y2="{high}" stroke="{colour}"/>')
        parts.append(
            f'<circle class="point {kind}" data-round="{rnd}" cx="{cx}" cy="{y(res["accuracy"])}" r="5" '
            f'fill="{colour}"><title>round {rnd} {kind}: {res["accuracy"]:.3f}</title></circle>'
        )
    for r in rows:
        label = "promoted" if r["promoted"] else ("rejected" if r["candidate"] else "no pairs")
        colour = "#1a7f37" if r["promoted"] else "#cf222e"
        mid = x(r["round"], 0)
        parts.append(
            f'<text class="decision" x="{mid}" y="{y0 + 16}" font-size="11" text-anchor="middle">'
            f"round {r['round']}</text>"
        )
        parts.append(
            f'<text x="{x(r["round"], 0)}" y="{y0 + 30}" font-size="11" fill="{colour}" text-anchor="middle">'
            f"{label}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _html(rows: list[dict[str, Any]]) -> str:
    esc = html.escape
    table = [
        "<table><tr><th>round</th><th>parent</th><th>candidate</th><th>traces</th><th>pairs</th>"
        "<th>DPO loss first / last</th><th>held-out current</th><th>held-out candidate</th>"
        "<th>paired diff (McNemar p)</th><th>decision</th></tr>"
    ]
    for r in rows:
        cur, cand = r["results"].get("current"), r["results"].get("candidate")
        fmt = lambda c: f"{c['accuracy']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]" if c else "-"  # noqa: E731
        paired = r["paired"]
        dpo = r["dpo"]
        loss = f"{dpo.get('first_loss') or 0:.3f} / {dpo.get('last_loss') or 0:.3f}" if dpo else "-"
        decision = "promoted" if r["promoted"] else "rejected: " + "; ".join(r["reasons"])
        diff = "-" if not paired else "{:+.3f} ({:.3g})".format(paired["difference"], paired["mcnemar_p"])
        cells = [
            str(r["round"]),
            esc(r["parent"]),
            esc(str(r["candidate"] or "-")),
            str(r["runs_used"]),
            str(r["pairs"]),
            loss,
            fmt(cur),
            fmt(cand),
            diff,
            esc(decision),
        ]
        table.append("<tr class='round'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table.append("</table>")
    examples = []
    for r in rows:
        for ex in r["examples"]:
            examples.append(
                f"<div class='pair'><b>round {r['round']}</b> {esc(ex['question'])}<br>"
                f"chosen (Delta {ex['delta_chosen']:+.2f}): <q>{esc(ex['chosen'])}</q><br>"
                f"rejected (Delta {ex['delta_rejected']:+.2f}): <q>{esc(ex['rejected'])}</q></div>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>cowest improvement report</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:960px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}"
        ".pair{margin:8px 0;font-size:13px}</style>"
        "</head><body><h1>Weak-model improvement rounds</h1>"
        "<p>Held-out accuracy of CoWest with the current adapter (grey) and the round's candidate (blue), "
        "95% bootstrap intervals; a candidate is promoted only when the paired test and every guard pass.</p>"
        + _svg(rows)
        + "<h2>Rounds</h2>"
        + "".join(table)
        + "<h2>Example pairs</h2>"
        + ("".join(examples) or "<p>none</p>")
        + "</body></html>"
    )


def _png(rows: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    points = _points(rows)
    if not points:
        return
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for kind, colour, shift in (("current", "gray", -0.12), ("candidate", "tab:blue", 0.12)):
        mine = [(rnd, res) for rnd, k, res in points if k == kind]
        xs = [rnd + shift for rnd, _ in mine]
        ys = [res["accuracy"] for _, res in mine]
        err = [
            [res["accuracy"] - res["ci_low"] for _, res in mine],
            [res["ci_high"] - res["accuracy"] for _, res in mine],
        ]
        ax.errorbar(xs, ys, yerr=err, fmt="o", color=colour, label=kind, capsize=3)
    for r in rows:
        ax.annotate(
            "promoted" if r["promoted"] else "rejected",
            (r["round"], 0.02),
            ha="center",
            fontsize=8,
            color="green" if r["promoted"] else "red",
        )
    ax.set_xticks([r["round"] for r in rows])
    ax.set_xlabel("round")
    ax.set_ylabel("held-out accuracy (CoWest)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
