"""Reports: Tables 1-3 and Fig. 1 from a small synthetic store, checked cell by cell against the inputs.

The store is built here with ``Store.add``; every expected cell below follows by hand from those inputs
(newest row wins, the model's paper protocol is preferred, ranks on shown precision).
A second store holds an ablation grid (3 variants x 2 seeds with per-image PSNR) and Table 3 rows with
per-image values: mean ± std, the paired intervals, their marks and notes, and the Comparisons table.
``tests/golden/report.md`` holds the full Markdown of the first store (regenerate with
``LMFN_BENCH_UPDATE_GOLDEN=1`` and review the diff). The LaTeX is compiled with pdflatex and the HTML
screenshotted with headless Chromium where they are installed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_fixtures import LMFN, _eval, _run, grid_values

from harness.errors import DataError
from harness.store import Store
from reports.inputs import load_report, model_key
from reports.render import MARKDOWN, cell_frame, render_latex, render_markdown, write_report
from reports.stats import paired_bootstrap

GOLDEN = Path(__file__).parent / "golden"


def _md_row(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")][1:]


# ---------------------------------------------------------------------------------------------------------


def test_aliases_fold_to_one_network() -> None:
    assert model_key("lmfn") == model_key("lka-msm-ifm@mr") == model_key("LKA-MSM-IFM") == LMFN
    assert model_key("ifm") == model_key("ifm@mr") == "ifm@mr"
    assert model_key("lka@parallel") == "lka"  # a scheme means nothing without IFM
    assert model_key("lkdn") == "lkdn"  # official LKDN weights are a baseline, not the `lka` ablation
    assert model_key("my.module:factory") == "my.module:factory"  # unknown to the zoo: kept as it is


def test_table1_cells_ranks_and_dashes(report) -> None:
    t1 = report.tables[0]
    v = t1.values.droplevel("block")
    assert list(v.index) == ["LKA", "MSM", "IFM", "LKA-MSM", "LKA-IFM", "MSM-IFM", "LKA-MSM-IFM (LMFN)"]
    assert v.loc["LKA", ("Manga109", "PSNR")] == 30.50
    assert v.loc["IFM", ("Manga109", "SSIM")] == 0.9060
    assert v.loc["LKA-MSM-IFM (LMFN)", ("Manga109", "PSNR")] == 31.00  # from the `lmfn` alias
    assert v.loc["LKA-MSM-IFM (LMFN)", ("", "Params (K)")] == 380.0
    assert v.loc["IFM", ("", "FLOPs (G)")] == 21.0
    assert math.isnan(v.loc["LKA-IFM", ("Manga109", "PSNR")]) and math.isnan(v.loc["MSM", ("", "Params (K)")])
    r = t1.rank.droplevel("block")[("Manga109", "PSNR")]
    assert r.to_dict() == {
        "LKA": 0,
        "MSM": 0,
        "IFM": 0,
        "LKA-MSM": 2,
        "LKA-IFM": 0,
        "MSM-IFM": 0,
        "LKA-MSM-IFM (LMFN)": 1,
    }
    md = cell_frame(t1, MARKDOWN).droplevel("block")
    assert md.loc["LKA-MSM-IFM (LMFN)", ("Manga109", "PSNR")] == "**31.00**†"
    assert md.loc["LKA-MSM", ("Manga109", "PSNR")] == "<ins>30.60</ins>†"
    assert md.loc["LKA-IFM", ("Manga109", "SSIM")] == "–"
    assert not any("not in the store; showing" in n for n in t1.notes)  # Manga109 exists: no fallback
    assert any(n.startswith("No PSNR/SSIM in the store for: LKA-IFM, MSM-IFM.") for n in t1.notes)
    assert (
        "† Weights trained by lmfn-bench, not official checkpoints "
        "(profile short, 2000 iters: LKA, MSM, IFM, LKA-MSM, LKA-MSM-IFM (LMFN))." in t1.notes
    )


def test_table2_schemes(report) -> None:
    t2 = report.tables[1]
    v = t2.values.droplevel("block")
    assert list(v.index) == ["Cascade", "Parallel", "Merge-and-run (LMFN)", "Merge-and-run, crossed"]
    assert v[("Manga109", "PSNR")].tolist()[:3] == [30.70, 30.80, 31.00]
    assert math.isnan(v.loc["Merge-and-run, crossed", ("Manga109", "PSNR")])  # only Urban100 in the store
    assert t2.rank.droplevel("block")[("Manga109", "PSNR")].tolist() == [0, 2, 1, 0]


def test_table3_newest_protocol_ranks_and_published_rows(report) -> None:
    t3 = report.tables[2]
    x4 = t3.values.xs("×4", level="block")
    assert list(x4.index) == [
        "Bicubic",
        "Bicubic (published)",
        "LKDN",
        "LKDN (published)",
        "BSRN",
        "IMDN",
        "IMDN (published)",
        "VapSR",
        "LMFN",
    ]
    assert x4.loc["IMDN", ("Set5", "PSNR")] == 32.21  # newest checkpoint row
    assert x4.loc["Bicubic", ("Set5", "PSNR")] == 28.42  # matlab row: bicubic's paper protocol
    assert x4.loc["LKDN", ("", "FLOPs (G)")] == pytest.approx(18.35)  # the ntire256 profile is ignored
    assert x4.loc["IMDN", ("", "Params (K)")] == pytest.approx(715.176)
    assert x4.loc["IMDN (published)", ("Urban100", "SSIM")] == 0.7838
    assert math.isnan(x4.loc["VapSR", ("", "Params (K)")]) and math.isnan(x4.loc["BSRN", ("Set14", "PSNR")])

    rank = t3.rank.xs("×4", level="block")
    assert rank[("Set5", "PSNR")].to_dict() == {
        "Bicubic": 0,
        "Bicubic (published)": 0,
        "LKDN": 2,
        "LKDN (published)": 0,
        "BSRN": 0,
        "IMDN": 0,
        "IMDN (published)": 0,
        "VapSR": 2,
        "LMFN": 1,
    }  # (LKDN and VapSR tie at 32.39; published rows are never ranked)
    assert rank[("Set5", "SSIM")][["LMFN", "LKDN", "VapSR"]].tolist() == [1, 2, 0]
    assert rank[("Manga109", "PSNR")][["LMFN", "LKDN", "BSRN"]].tolist() == [1, 2, 0]
    assert rank[("Set14", "PSNR")]["IMDN"] == 0  # a lone number is not ranked
    assert t3.rank.xs("×2", level="block").to_numpy().sum() == 0

    marks = t3.marks.xs("×4", level="block")
    assert marks.loc["Bicubic", ("Set5", "PSNR")] == "§" and marks.loc["LMFN", ("Set5", "SSIM")] == "†"
    assert marks.loc["IMDN", ("Set5", "PSNR")] == ""
    assert t3.row_kind.xs("×4", level="block")["LKDN (published)"] == "published"
    assert "No results at ×3." in t3.notes
    assert any("§ protocol matlab" in n for n in t3.notes)
    assert any(n.startswith("No Params/FLOPs") and "VapSR ×4" in n and "IMDN ×2" in n for n in t3.notes)


def test_markdown_and_latex_text(report) -> None:
    md = render_markdown(report, "fig1.png")
    assert _md_row(md, "LMFN")[:4] == ["380", "20.1", "**32.50**†", "**0.8990**†"]
    assert _md_row(md, "VapSR")[:4] == ["–", "–", "<ins>32.39</ins>", "0.8978"]
    assert _md_row(md, "LKDN (published)")[:3] == ["*322*", "*18.3*", "*32.39*"]
    assert _md_row(md, "Bicubic")[2] == "28.42§"
    assert "| **×2** |" in md and "![Fig. 1" in md

    tex = render_latex(report, "fig1.pdf")
    t3 = tex["table3.tex"]
    assert (
        r"LMFN & 380 & 20.1 & \textbf{32.50}\textsuperscript{\dag} & "
        r"\textbf{0.8990}\textsuperscript{\dag} & --" in t3
    )
    assert r"VapSR & -- & -- & \underline{32.39} & 0.8978 &" in t3
    assert (
        r"\multicolumn{2}{c}{Set5}" in t3 and r"\cmidrule(lr){4-5}" in t3 and r"\resizebox{\linewidth}" in t3
    )
    assert r"\multicolumn{13}{l}{\textit{$\times$4}}" in t3
    assert "×" not in "".join(tex.values()) and "†" not in "".join(tex.values())  # all unicode escaped
    assert tex["main.tex"].count(r"\input{") == 4 and r"\usepackage{booktabs}" in tex["main.tex"]


def test_golden_markdown(report) -> None:
    text = render_markdown(report, "fig1.png").replace(report.store, "STORE")
    golden = GOLDEN / "report.md"
    if os.environ.get("LMFN_BENCH_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_fallback_dataset_is_announced(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    _eval(db, "lka", 4, "Set5", 31.0, 0.88, trained=True)
    _eval(db, "lka", 4, "Urban100", 25.0, 0.75, trained=True)
    _eval(db, "msm", 4, "Set5", 30.0, 0.87, trained=True)
    t1 = load_report(tmp_path / "r.db", "Manga109", 4, published=published).tables[0]
    assert t1.notes[0] == "Manga109 ×4 is not in the store; showing Urban100 ×4."  # Urban100 beats Set5
    assert t1.values.droplevel("block").loc["LKA", ("Urban100", "PSNR")] == 25.0
    assert "Urban100" in t1.caption


def test_table3_shows_sets_outside_the_paper_as_extra_columns(tmp_path: Path, published: Path) -> None:
    # a fresh machine measures only the embedded Default set: Table 3 must show it, not only dashes
    db = Store(tmp_path / "r.db")
    _eval(db, "lkdn", 4, "Default", 29.5, 0.81)
    _eval(db, "bicubic", 4, "Default", 28.2, 0.80)
    t3 = load_report(tmp_path / "r.db", "Manga109", 4, published=published).tables[2]
    vals = t3.values.droplevel("block")
    assert vals.loc["LKDN", ("Default", "PSNR")] == 29.5
    assert list(t3.values.columns.get_level_values(0))[-1] == "Default"
    assert any("Default" in n for n in t3.notes)


def test_figure_points_and_files(report, tmp_path: Path) -> None:
    pts = report.figure.set_index("label")
    assert sorted(pts.index) == ["BSRN", "LKDN", "LMFN"]  # Bicubic, IMDN, VapSR have no Manga109 ×4
    assert pts["highlight"].to_dict() == {"LKDN": False, "BSRN": False, "LMFN": True}
    assert pts.loc["LMFN", ["flops_g", "params_k", "psnr"]].tolist() == [pytest.approx(20.1), 380.0, 31.0]
    assert any("IMDN (no Manga109 ×4)" in n for n in report.figure_notes)
    files = write_report(report, tmp_path, ("md",))
    png, pdf = tmp_path / "fig1.png", tmp_path / "fig1.pdf"
    assert png in files and pdf.read_bytes()[:5] == b"%PDF-"
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = np.abs(img - np.array([228, 114, 115])).max(axis=2) < 16  # LMFN's marker, alpha 0.65 on white
    assert red.sum() > 50


def test_html_is_self_contained_with_provenance(report, tmp_path: Path) -> None:
    write_report(report, tmp_path, ("html",))
    page = (tmp_path / "report.html").read_text()
    assert 'src="data:image/png;base64,' in page and "<link" not in page and "<script" not in page
    assert "<b>32.50</b><sup>†</sup>" in page and "<u>32.39</u>" in page
    assert "imdn4hash012" in page and "CPU Test" in page and "short, 2000 iters" in page  # provenance
    assert 'title="#' in page


def test_unknown_model_names_are_kept(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    _eval(db, "my.module:factory", 4, "Set5", 30.0, 0.85)
    t3 = load_report(tmp_path / "r.db", "Manga109", 4, published=published).tables[2]
    assert t3.values.droplevel("block").loc["my.module:factory", ("Set5", "PSNR")] == 30.0


# ---------------------------------------------------------------------------------------------------------
# ablation grids: mean ± std over seeds, paired intervals to LMFN, Table 3's ≈, the Comparisons table


def _delta(iv) -> str:
    """A difference cell written out by hand: sign, 2 decimals, true minus signs."""
    signed = lambda v: f"{v:+.2f}".replace("-", "−")  # noqa: E731
    return f"{signed(iv.mean)} [{signed(iv.lo)}, {signed(iv.hi)}]"


def test_grid_table1_mean_std_and_intervals(grid_report) -> None:
    g = grid_values()
    t1 = grid_report.tables[0]
    v, std = t1.values.droplevel("block"), t1.std.droplevel("block")
    lka = [np.mean(list(g["lka"][s].values())) for s in (0, 1)]  # the rerun row and grid g0 are ignored
    assert v.loc["LKA", ("Manga109", "PSNR")] == pytest.approx(np.mean(lka))
    assert std.loc["LKA", ("Manga109", "PSNR")] == pytest.approx(np.std(lka, ddof=1))
    assert v.loc["LKA", ("Manga109", "SSIM")] == pytest.approx(0.9052)
    lka_iv, msm_iv = (paired_bootstrap(g[m], g[LMFN]) for m in ("lka", "msm"))
    assert lka_iv.method == "seeds+images" and lka_iv.hi < 0 and lka_iv.resolved  # -0.25 .. -0.35 per image
    assert msm_iv.lo < 0 < msm_iv.hi and not msm_iv.resolved  # per-image differences of both signs
    assert v.loc["LKA", ("Manga109", "Δ PSNR vs LMFN")] == pytest.approx(lka_iv.mean)
    assert t1.ci.droplevel("block").loc["LKA", ("Manga109", "Δ PSNR vs LMFN")] == (lka_iv.lo, lka_iv.hi)

    md = render_markdown(grid_report, None)
    assert "| Params (K) | FLOPs (G) | Manga109 PSNR | Manga109 SSIM | Manga109 Δ PSNR vs LMFN |" in md
    lka_row = ["–", "–", "<ins>29.72</ins> ± 0.03†", "0.9052 ± 0.0003†", _delta(lka_iv) + r"\*"]
    assert _md_row(md, "LKA") == lka_row
    assert _md_row(md, "MSM")[2:] == ["**30.02** ± 0.03†", "<ins>0.9080</ins> ± 0.0000†", _delta(msm_iv)]
    assert _md_row(md, "LKA-MSM-IFM (LMFN)")[4] == "–"  # the reference itself
    assert _delta(lka_iv) == "−0.30 [−0.32, −0.28]"


def test_grid_notes_state_budget_seeds_level_and_what_is_resolved(grid_report) -> None:
    t1 = grid_report.tables[0]
    assert t1.caption.endswith(
        "Mean ± std over 2 seeds of grid g1 (profile short, 2000 iterations); Δ PSNR vs LMFN with 95% paired "
        "bootstrap intervals."
    )
    assert (
        "Budget: grid g1: 2 seeds per variant (seeds 0, 1); profile short, 2000 iterations, batch 16 of "
        "48×48 LR patches, training data T91+BSD200; mean training wall time 5.0 min per run; "
        "device CPU Test."
    ) in t1.notes  # wall time: (240 s + 360 s) / 2
    assert "Cells: mean ± std over seeds (std with ddof=1)." in t1.notes
    delta = next(n for n in t1.notes if n.startswith("Δ PSNR vs LMFN:"))
    assert "95% percentile bootstrap" in delta and "resamples of seeds, then images" in delta
    assert "bootstrap seed 0, fixed" in delta and "10,000 resamples" in delta
    assert "* The interval excludes 0: resolved at this budget (LKA)." in t1.notes
    assert any(n.startswith("Not resolved at this budget") and n.endswith(": MSM.") for n in t1.notes)
    assert not any("no effect" in n for t in grid_report.tables for n in t.notes)
    t2 = grid_report.tables[1]
    assert "Not in grid g1 (newest single run shown, no Δ PSNR vs LMFN): Parallel." in t2.notes
    assert t2.values.droplevel("block").loc["Parallel", ("Manga109", "PSNR")] == 29.9


def test_grid_with_one_seed_says_images_only(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    g = grid_values()
    for model in (LMFN, "lka"):
        _run(db, model, 0, g[model][0])
    t1 = load_report(tmp_path / "r.db", "Manga109", 4, published=published).tables[0]
    assert "One run over 1 seed of grid g1" in t1.caption and "Cells: one seed per variant." in t1.notes
    assert any("One seed: the interval is over images only" in n for n in t1.notes)
    iv = paired_bootstrap({0: g["lka"][0]}, {0: g[LMFN][0]})
    assert iv.method == "images"
    md = cell_frame(t1, MARKDOWN).droplevel("block")
    assert md.loc["LKA", ("Manga109", "PSNR")] == "<ins>29.70</ins>†"  # no ± with one seed
    assert md.loc["LKA", ("Manga109", "Δ PSNR vs LMFN")] == _delta(iv) + r"\*"


def test_grid_variant_on_other_images_is_an_error(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    g = grid_values()
    _run(db, LMFN, 0, g[LMFN][0])
    _run(db, "lka", 0, {("zebra" if k == "woman" else k): v for k, v in g["lka"][0].items()})
    with pytest.raises(DataError, match=r"LKA vs LMFN on Manga109 ×4 \(grid g1\): seed 0: .*zebra.*woman"):
        load_report(tmp_path / "r.db", "Manga109", 4, published=published)


def test_table3_marks_best_not_resolved_from_second(grid_report, grid_store: Path) -> None:
    t3 = grid_report.tables[2]
    marks = t3.marks.xs("×4", level="block")
    assert marks.loc["LKDN", ("Set5", "PSNR")] == "≈"  # +0.05 dB with per-image gaps of both signs
    assert marks.loc["LKDN", ("Manga109", "PSNR")] == ""  # +0.09 .. +0.13 on every image: resolved
    assert marks.loc["BSRN", ("Set5", "PSNR")] == "" and marks.loc["LKDN", ("Set5", "SSIM")] == ""
    assert any(n.startswith("≈ Best and second-best PSNR of the column are not resolved") for n in t3.notes)
    assert _md_row(render_markdown(grid_report, None), "LKDN")[2] == "**31.65**≈"


def test_comparisons_table(grid_report) -> None:
    c = grid_report.comparisons
    assert list(c.values.index) == [
        ("LKA − LMFN", "Manga109 ×4"),
        ("LKDN − BSRN", "Set5 ×4"),
        ("LKDN − BSRN", "Manga109 ×4"),
    ]
    g = grid_values()
    iv = paired_bootstrap(g["lka"], g[LMFN])
    row = c.values.loc[("LKA − LMFN", "Manga109 ×4")]
    assert row.tolist() == [pytest.approx(iv.mean), 2, 5]  # both grid runs: seeds, then images
    assert c.ci.loc[("LKA − LMFN", "Manga109 ×4"), ("", "Δ PSNR")] == (iv.lo, iv.hi)
    assert c.values[("", "Seeds")].tolist() == [2, 1, 1]  # LKDN / BSRN: one measured row each
    assert c.marks[("", "Δ PSNR")].tolist() == ["*", "", "*"]
    assert "Not resolved (the interval contains 0): LKDN − BSRN on Set5 ×4." in c.notes
    md = render_markdown(grid_report, None)
    assert "## Comparisons. Paired PSNR differences with 95% bootstrap intervals." in md
    assert "| Manga109 ×4 | " + _delta(iv) + r"\* | 2 | 5 |" in md
