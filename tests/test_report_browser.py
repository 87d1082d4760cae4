"""The improvement report in a real headless Chromium: it loads from a file with nothing fetched,
draws the chart (points and intervals for every evaluated round), and shows every round."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from servers import required_service

from cowest_graph.report import write_report

pytestmark = pytest.mark.slow


def _chromium() -> str:
    return required_service("COWEST_TEST_CHROMIUM", "a headless Chromium", "bash scripts/chromium.sh")


def _result(accuracy: float) -> dict:
    return {"n": 48, "accuracy": accuracy, "ci_low": accuracy - 0.1, "ci_high": accuracy + 0.1}


def _rounds() -> list[dict]:
    example = {
        "question": "When are expense reports due?",
        "chosen": "Expense reports are due on Thursday.",
        "rejected": "Expense reports are due <b>whenever</b>.",
        "delta_chosen": 1.0,
        "delta_rejected": 0.0,
    }
    promoted = {"paired": {"difference": 0.146, "mcnemar_p": 0.008}, "reasons": []}
    rejected = {"paired": {"difference": 0.0, "mcnemar_p": 1.0}, "reasons": ["not better"]}
    return [
        {
            "round": 1, "parent": "a/v0001", "candidate": "a/v0002", "run_ids": ["r1", "r2"], "pairs": 14,
            "dpo": {"first_loss": 0.693, "last_loss": 0.41}, "examples": [example], "done": True,
            "results": {"current": _result(0.417), "candidate": _result(0.562)},
            "gate": promoted, "promoted": True,
        },
        {
            "round": 2, "parent": "a/v0002", "candidate": "a/v0003", "run_ids": ["r3"], "pairs": 9,
            "dpo": {"first_loss": 0.693, "last_loss": 0.52}, "examples": [], "done": True,
            "results": {"current": _result(0.562), "candidate": _result(0.562)},
            "gate": rejected, "promoted": False,
        },
        {"round": 3, "parent": "a/v0002", "run_ids": [], "pairs": 0, "skipped": "no preference pairs",
         "done": True, "results": {}, "promoted": False},
    ]  # fmt: skip


def test_the_report_renders_its_chart_and_rounds_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    chromium = _chromium()
    page = write_report(tmp_path, _rounds())
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,1600"]
    # Nothing may be fetched at view time: every host name resolves to nowhere.
    flags.append("--host-resolver-rules=MAP * ~NOTFOUND")
    dom = subprocess.run(
        [*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert '<svg id="chart"' in dom
    assert len(re.findall(r'<circle class="point (current|candidate)"', dom)) == 4  # 2 evaluated rounds
    assert [int(n) for n in re.findall(r'class="decision"[^>]*>round (\d)<', dom)] == [1, 2, 3]
    assert dom.count('<tr class="round">') == 3 and "promoted" in dom and "no preference pairs" in dom
    assert "&lt;b&gt;whenever&lt;/b&gt;" in dom  # a draft's markup is shown, never rendered

    shot = tmp_path / "report.png.screenshot.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    blue = sum(
        n for n, c in colours if abs(c[0] - 0x1F) < 40 and abs(c[1] - 0x6F) < 40 and abs(c[2] - 0xEB) < 40
    )
    green = sum(n for n, c in colours if c[1] > 100 and c[0] < 80 and c[2] < 100)
    assert blue > 100, f"the candidates' points were not drawn ({blue} blue pixels)"
    assert green > 20, f"the promoted round's label was not drawn ({green} green pixels)"
