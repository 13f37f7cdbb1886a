"""Figs. 1, 5 and 6 in the report: Fig. 1's labels checked on the rendered figure (no label overlaps another or
any marker), Figs. 5/6 and Table 3's DI column from the lam / visual rows of report_fixtures.add_figures
(expected values follow by hand from those rows), their Markdown and LaTeX against goldens in tests/golden
(regenerate with LMFN_BENCH_UPDATE_GOLDEN=1 and review the diff), the tiles found by colour in the PNGs, and
the compiled LaTeX's pages (count, size, no overfull box) against a golden."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from report_fixtures import LAM_DI, TILE_COLOURS, VISUAL_PSNR

from harness.zoo import get_spec
from reports import figure
from reports.inputs import display_name
from reports.render import render_latex, render_markdown, write_report

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("LMFN_BENCH_UPDATE_GOLDEN"))

# Manga109 x4-like coordinates of models that sit close together (published params/FLOPs; PSNR within 0.4 dB)
CLOSE = [
    ("LKDN", 18.3, 322, 30.97, False),
    ("BSRN", 19.4, 352, 30.84, False),
    ("VapSR", 19.6, 342, 30.89, False),
    ("SAFMN-NTIRE", 14.6, 240, 30.71, False),
    ("RFDN-AIM", 27.1, 433, 30.79, False),
    ("LMFN", 20.1, 380, 31.10, True),
    ("Bicubic", 0.0, 0, 24.89, False),
]
# six models on nearly one spot: Bicubic far away makes the axes span them in a few points
STACKED = [(f"Model-{i}", 20.0 + 0.05 * i, 300 + i, 30.9 + 0.01 * i, i == 0) for i in range(6)]
STACKED += [("Bicubic", 0.0, 0, 24.89, False)]


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (LMFN_BENCH_UPDATE_GOLDEN=1 to accept)"


def _circle_hits_box(cx: float, cy: float, r: float, box) -> bool:
    """Does the disc (cx, cy, r) overlap the rectangle? (nearest point of the box to the centre)"""
    nx, ny = min(max(cx, box.x0), box.x1), min(max(cy, box.y0), box.y1)
    return math.hypot(nx - cx, ny - cy) < r


# the close models with a GPU runtime under each label (two-line labels; Bicubic has none)
TIMED = [(*p, ms) for p, ms in zip(CLOSE, (3.84, 4.1, 4.72, 2.6, 5.05, 6.3, math.nan), strict=True)]


@pytest.mark.parametrize("points", [CLOSE, STACKED, TIMED], ids=["close-models", "stacked", "with-runtime"])
def test_fig1_labels_overlap_no_label_and_no_marker(points: list) -> None:
    cols = ["label", "flops_g", "params_k", "psnr", "highlight", "runtime_ms"][: len(points[0])]
    df = pd.DataFrame(points, columns=cols)
    fig = figure.draw(df, "test")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    want = [p[0] + (f"\n{p[5]:.1f} ms" if len(p) > 5 and not math.isnan(p[5]) else "") for p in points]
    assert sorted(t.get_text() for t in labels) == sorted(want)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "two labels overlap"
    # the markers as drawn: offsets and sizes of the scatter collection, radius sqrt(area)/2 points
    (dots,) = ax.collections
    centres = ax.transData.transform(dots.get_offsets())
    radii = np.sqrt(dots.get_sizes()) / 2 * fig.dpi / 72
    for t, box in zip(labels, boxes, strict=True):
        for (cx, cy), r in zip(centres, radii, strict=True):
            assert not _circle_hits_box(cx, cy, r, box), f"label {t.get_text()} covers a marker"
        assert ax.get_window_extent(renderer).contains(box.x0, box.y0)  # inside the axes
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "Params" and len(legend.get_texts()) >= 2


def test_display_names_are_one_spelling() -> None:
    assert display_name(get_spec("lkdn")) == "LKDN" and display_name(get_spec("lmfn")) == "LMFN"
    assert display_name(get_spec("safmn-ntire")) == "SAFMN-NTIRE"  # base model's paper name + suffix
    assert display_name(get_spec("rfdn-aim")) == "RFDN-AIM"
    assert display_name(get_spec("vapsr-s")) == "VapSR-S"  # its own paper name


def test_fig1_caption_names_the_set_shown(figure_report) -> None:
    assert figure_report.figure_caption.startswith("PSNR on Set5 ×4 against FLOPs")
    assert "The paper plots Manga109 ×4, which is not in the store." in figure_report.figure_caption


def test_fig6_panel_from_lam_rows(figure_report) -> None:
    fig6 = next(p for p in figure_report.panels if p.key == "fig6")
    # bicubic first (none here), LMFN last, the rest by label; the older LKDN row on another window loses
    assert [t.title for t in fig6.tiles] == ["BSRN", "LKDN", "VapSR", "LMFN"]
    di = dict(zip(["bsrn", "lkdn", "vapsr", "lmfn"], [t.value for t in fig6.tiles], strict=True))
    assert di == {k: f"DI {v:.2f}" for k, v in LAM_DI.items()}
    assert fig6.tiles[2].png == "" and fig6.tiles[-1].highlight
    assert "Set14/baboon ×4" in fig6.caption and "16×16 window at x=120, y=80" in fig6.caption
    assert "σ 1.2→0 in 50 steps, 9×9 kernels; LR by pil bicubic" in fig6.caption
    assert fig6.notes == [
        "No map file for: VapSR (DI shown alone).",
        "2 other LAM result(s) at ×4 (other images, windows or settings) not shown.",
    ]


def test_fig5_panel_from_visual_rows(figure_report) -> None:
    fig5 = next(p for p in figure_report.panels if p.key == "fig5")
    assert [t.title for t in fig5.tiles] == ["HR", "Bicubic", "LKDN", "LMFN"]
    assert [t.value for t in fig5.tiles[1:]] == [f"{VISUAL_PSNR[m]:.2f}" for m in ("bicubic", "lkdn", "lmfn")]
    assert "Urban100/img_001 ×4: the 32×32 box at x=40, y=40" in fig5.caption and fig5.notes == []


def test_table3_di_column(figure_report) -> None:
    t3 = figure_report.tables[2]
    v = t3.values.xs("×4", level="block")
    assert list(t3.values.columns[:3]) == [("", "Params (K)"), ("", "FLOPs (G)"), ("", "DI")]
    assert v.loc["LKDN", ("", "DI")] == 13.25 and v.loc["LMFN", ("", "DI")] == 21.75
    assert v.loc["VapSR", ("", "DI")] == 17.0 and math.isnan(v.loc["Bicubic", ("", "DI")])
    assert any(n.startswith("DI at ×4: LAM diffusion index on Set14/baboon, 16×16 window") for n in t3.notes)


def test_no_figure_rows_no_panels_and_no_di(report) -> None:
    assert report.panels == [] and ("", "DI") not in report.tables[2].values.columns


def test_golden_markdown_and_latex_of_figures(figure_report) -> None:
    md = render_markdown(figure_report, "fig1.png").replace(figure_report.store, "STORE")
    _golden("figures.md", md[md.index("## Table 3.") :])
    tex = render_latex(figure_report, "fig1.pdf")
    _golden("figures.tex", "\n".join(tex[f] for f in ("fig5.tex", "fig6.tex", "table3.tex")))
    assert tex["main.tex"].count(r"\input{") == 6


def _colour_columns(png: Path, colour: tuple[int, int, int]) -> np.ndarray:
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return np.nonzero((np.abs(img - np.array(colour)).max(axis=2) < 6).any(axis=0))[0]


def test_panel_images_show_each_tile_in_order(figure_report, tmp_path: Path) -> None:
    write_report(figure_report, tmp_path, ("md",))
    xs = [_colour_columns(tmp_path / "fig5.png", TILE_COLOURS[k]) for k in ("hr", "bicubic", "lkdn", "lmfn")]
    assert all(len(x) > 50 for x in xs)  # each crop drawn, side by side, left to right
    assert all(a.max() < b.min() for a, b in zip(xs[:-1], xs[1:], strict=True))
    lkdn, lmfn = (_colour_columns(tmp_path / "fig6.png", TILE_COLOURS[k]) for k in ("lkdn", "lmfn"))
    assert len(lkdn) > 50 and len(lmfn) > 50 and lkdn.max() < lmfn.min()
    assert (tmp_path / "fig5.pdf").read_bytes()[:5] == b"%PDF-" and (tmp_path / "fig6.pdf").is_file()


def _pdf_pages(pdf: bytes) -> list[list[float]]:
    """The MediaBox of every page object, read from the raw file and from its (Flate) object streams."""
    chunks = [pdf]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(m.group(1)))
        except zlib.error:
            pass
    boxes = []
    for c in chunks:
        for page in re.finditer(rb"/Type\s*/Page(?![a-zA-Z]).*?/MediaBox\s*\[([^\]]*)\]", c, re.S):
            boxes.append([round(float(v), 1) for v in page.group(1).split()])
    return boxes


def test_latex_pages_fit_the_paper(figure_report, tmp_path: Path) -> None:
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    write_report(figure_report, tmp_path, ("latex",))
    tex = tmp_path / "latex"
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=tex,
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    log = (tex / "main.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, "something runs past the text width"
    written = re.search(r"Output written on main\.pdf \((\d+) pages?", log)
    pages = _pdf_pages((tex / "main.pdf").read_bytes())
    found = {"pages": int(written.group(1)), "page_size_pt": sorted({tuple(b) for b in pages})}
    assert len(pages) == found["pages"]
    golden = GOLDEN / "latex_pages.json"
    if UPDATE:
        golden.write_text(json.dumps(found, indent=1) + "\n")
    assert json.loads(json.dumps(found)) == json.loads(golden.read_text())
