"""Reports: Tables 1-3 and Fig. 1 from a small synthetic store, checked cell by cell against the inputs.

The store is built here with ``Store.add``; every expected cell below follows by hand from those inputs
(newest row wins, the model's paper protocol is preferred, ranks on shown precision).
``tests/golden/report.md`` holds the full Markdown of the same store (regenerate with
``LMFN_BENCH_UPDATE_GOLDEN=1`` and review the diff). The LaTeX is compiled with pdflatex and the HTML
screenshotted with headless Chromium where they are installed.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from harness.cli.report import command
from harness.errors import UsageError
from harness.store import Store
from reports.inputs import load_report, model_key, write_reports
from reports.render import HTML, LATEX, MARKDOWN, cell_frame, render_latex, render_markdown, write_report

GOLDEN = Path(__file__).parent / "golden"
PUBLISHED = """model,scale,params_k,flops_g,set5_psnr,set5_ssim,set14_psnr,set14_ssim,b100_psnr,b100_ssim,\
urban100_psnr,urban100_ssim,manga109_psnr,manga109_ssim,source
Bicubic,4,,,28.42,0.8104,26.00,0.7027,25.96,0.6675,23.14,0.6577,24.89,0.7866,test table
IMDN,4,715,41,32.21,0.8948,28.58,0.7811,27.56,0.7353,26.04,0.7838,30.45,0.9075,test table
LKDN,4,322,18.3,32.39,0.8979,28.79,0.7859,27.69,0.7402,26.42,0.7965,30.97,0.9140,test table
"""
OLD, NEW = "2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"
TRAIN = {"profile": "short", "iters": 2000}
LMFN = "lka-msm-ifm@mr"  # LMFN's key: the zoo's registered name of the full model


def _eval(db: Store, model: str, scale: int, dataset: str, psnr: float, ssim: float, **kw) -> None:
    db.add(
        {
            "kind": "eval",
            "model": model,
            "scale": scale,
            "dataset": dataset,
            "psnr": psnr,
            "ssim": ssim,
            "n_images": 5,
            "protocol": kw.get("protocol", "basicsr"),
            "source": "trained" if kw.get("trained") else "measured",
            "extra": TRAIN if kw.get("trained") else {},
            "checkpoint": f"/w/{model}_x{scale}.pth",
            "checkpoint_hash": kw.get("hash", f"{model}{scale}hash0123456789"),
            "created_at": kw.get("at", NEW),
            "device": "CPU Test",
            "versions": {"torch": "9.9", "python": "3.x"},
            "code_rev": "abc123",
        }
    )


def _profile(db: Store, model: str, scale: int, params: int, flops: float, **kw) -> None:
    metrics = {"params": params, "flops_paper": flops, "input": kw.get("input", "hd720")}
    db.add(
        {
            "kind": "profile",
            "model": model,
            "scale": scale,
            "metrics": metrics,
            "device_key": kw.get("key", "cpu"),
            "created_at": kw.get("at", NEW),
            "device": "CPU Test",
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "results.db"
    db = Store(path)
    # Table 3, x4. IMDN Set5: an older checkpoint's row must lose to the newer one.
    _eval(db, "imdn", 4, "Set5", 30.00, 0.8000, hash="old", at=OLD)
    _eval(db, "imdn", 4, "Set5", 32.21, 0.8948, hash="new")
    _eval(db, "imdn", 4, "Set14", 28.58, 0.7811)
    _eval(db, "bsrn", 4, "Set5", 32.35, 0.8966)
    _eval(db, "bsrn", 4, "Manga109", 30.84, 0.9123)
    _eval(db, "lkdn", 4, "Set5", 32.39, 0.8979)
    _eval(db, "lkdn", 4, "Manga109", 30.97, 0.9140)
    _eval(db, "vapsr", 4, "Set5", 32.3901, 0.8978)  # ties LKDN at the shown 2 decimals
    # bicubic's paper protocol is matlab: the older matlab row beats the newer basicsr one
    _eval(db, "bicubic", 4, "Set5", 28.42, 0.8104, protocol="matlab", at=OLD)
    _eval(db, "bicubic", 4, "Set5", 28.53, 0.8110)
    _eval(db, "lmfn", 4, "Set5", 32.50, 0.8990, trained=True)
    _eval(db, "lmfn", 4, "Manga109", 31.00, 0.9150, trained=True)
    _eval(db, "imdn", 2, "Set5", 38.00, 0.9605)  # a lone x2 row: nothing to rank it against
    for m, p, f in (
        ("imdn", 715176, 40.89e9),
        ("bsrn", 352000, 19.41e9),
        ("lkdn", 322000, 18.35e9),
        ("lmfn", 380000, 20.1e9),
        ("bicubic", 0, 0.0),
    ):
        _profile(db, m, 4, p, f)
    _profile(db, "lkdn", 4, 322000, 7.0e9, input="ntire256", key="ntire")  # not the 1280x720 protocol
    # Tables 1-2 on Manga109 x4 (the alias `lmfn` above is the lka-msm-ifm@mr row)
    _eval(db, "lka", 4, "Manga109", 30.50, 0.9050, trained=True)
    _eval(db, "msm", 4, "Manga109", 30.40, 0.9040, trained=True)
    _eval(db, "lka-msm", 4, "Manga109", 30.60, 0.9070, trained=True)
    _eval(db, "ifm@mr", 4, "Manga109", 30.55, 0.9060, trained=True)
    _eval(db, "lka-msm-ifm@parallel", 4, "Manga109", 30.80, 0.9120, trained=True)
    _eval(db, "lka-msm-ifm@cascade", 4, "Manga109", 30.70, 0.9100, trained=True)
    _eval(db, "lka-msm-ifm@mr-cross", 4, "Urban100", 26.00, 0.7900, trained=True)  # other set: not shown
    _profile(db, "lka", 4, 322000, 18.35e9)
    _profile(db, "ifm@mr", 4, 390000, 21.0e9)
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("pub") / "published.csv"
    p.write_text(PUBLISHED)
    return p


@pytest.fixture(scope="module")
def report(store: Path, published: Path):
    return load_report(store, "Manga109", 4, published=published)


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


def _snapshot(db: Path) -> tuple[bytes, int, list]:
    """The store's bytes, mtime and schema; read with immutable=1, which never creates a -wal/-shm file."""
    con = sqlite3.connect(f"{db.as_uri()}?immutable=1", uri=True)
    try:
        schema = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        con.close()
    return db.read_bytes(), db.stat().st_mtime_ns, schema


def _same_tables(a, b) -> None:
    for ta, tb in zip(a.tables, b.tables, strict=True):
        assert ta.values.equals(tb.values) and ta.rank.equals(tb.rank) and ta.notes == tb.notes, ta.key


def _unprivileged(fn: Callable[[], None]) -> str:
    """Run ``fn`` as a user that file modes bind; returns '' or its error. Root ignores chmod, so as root
    ``fn`` runs in a forked child that drops to nobody (the parent has already imported what it needs)."""

    def attempt() -> str:
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            fn()
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return ""

    if os.geteuid() != 0:
        return attempt()
    r, w = os.pipe()
    if (pid := os.fork()) == 0:
        try:
            os.write(w, attempt().encode()[:4000])
        finally:  # the child must never return into pytest
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    os.waitpid(pid, 0)
    return msg


def test_report_leaves_the_store_unchanged(store: Path, published: Path, report, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    shutil.copy2(store, db)
    before = _snapshot(db)
    _same_tables(load_report(db, "Manga109", 4, published=published), report)
    assert _snapshot(db) == before  # (SQLite may add -wal/-shm beside a WAL store in a writable folder)


def test_report_reads_a_read_only_store_in_a_read_only_folder(store: Path, published: Path, report) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lmfn-ro-"))  # outside pytest's 0700 tmp, so nobody can reach it
    folder.chmod(0o755)
    db = folder / "results.db"
    shutil.copy2(store, db)
    shutil.copy2(published, folder / "published.csv")
    before = _snapshot(db)
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        error = _unprivileged(
            lambda: _same_tables(load_report(db, "Manga109", 4, published=folder / "published.csv"), report)
        )
        listing = sorted(p.name for p in folder.iterdir())
        after = _snapshot(db)
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
    assert error == ""
    assert listing == ["published.csv", "results.db"]  # no -wal / -shm left beside the store
    assert after == before


def test_write_reports_library_entry(store: Path, published: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown report format 'pdf'"):
        write_reports(tmp_path / "absent.db", ["pdf"], tmp_path / "out")  # before the store is read
    files = write_reports(store, ["md"], tmp_path / "out", "manga109", 4, published=published)
    assert tmp_path / "out" / "report.md" in files and not (tmp_path / "out" / "report.html").exists()
    assert (tmp_path / "all" / "latex" / "main.tex") in write_reports(store, ["all"], tmp_path / "all")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so `report` is a subcommand as in harness.cli
    app.command("report")(command)
    return app


def test_cli_writes_every_format(store: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        _cli(), ["report", "--store", str(store), "--out", str(tmp_path), "--format", "all"]
    )
    assert res.exit_code == 0, res.output
    for f in ("report.html", "report.md", "fig1.png", "latex/main.tex", "latex/table3.tex", "latex/fig1.pdf"):
        assert (tmp_path / f).is_file(), f


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        ("empty", [], "has no eval or profile results"),
        ("absent", [], "does not exist"),
        ("garbage", [], "is not a results store"),
        ("empty", ["--format", "pdf"], "unknown --format 'pdf'"),
        ("empty", ["--scale", "5"], "--scale must be one of 2, 3, 4"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, setup: str, args: list[str], needle: str) -> None:
    db = tmp_path / "r.db"
    if setup == "empty":
        Store(db)
    elif setup == "garbage":
        db.write_text("not a database\n" * 100)
    res = CliRunner().invoke(_cli(), ["report", "--store", str(db), "--out", str(tmp_path / "out"), *args])
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2 and needle in text and "Traceback" not in text
    assert len([ln for ln in text.strip().splitlines() if ln.strip()]) == 1, text
    assert not (tmp_path / "out").exists()
    assert (setup == "absent") != db.exists()  # a missing store is not created by reading it


def test_latex_compiles_with_pdflatex(report, tmp_path: Path) -> None:
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    write_report(report, tmp_path, ("latex",))
    tex = tmp_path / "latex"
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
        cwd=tex,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    log = (tex / "main.log").read_text(errors="replace")
    assert "Missing character" not in log and "Undefined control sequence" not in log
    assert (tex / "main.pdf").read_bytes()[:5] == b"%PDF-"


def _chromium() -> str | None:
    return next((c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


def test_html_renders_in_headless_chromium(report, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    write_report(report, tmp_path, ("html",))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chr'}",
            f"--screenshot={shot}",
            "--window-size=1400,3000",
            (tmp_path / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file(), "chromium wrote no screenshot"
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (3000, 1400)
    dark = (img.max(axis=2) < 80).mean()
    assert 0.005 < dark < 0.3  # text and rules drawn, not a blank or black page
    # the embedded figure decoded and painted: its LMFN (red) and other (blue) markers are on screen
    for colour in ([228, 114, 115], [139, 163, 204]):
        assert (np.abs(img - np.array(colour)).max(axis=2) < 16).sum() > 50, colour
    # the HTML flavour and the table text agree (the browser shows what the frames hold)
    assert cell_frame(report.tables[2], HTML).xs("×4", level="block").loc["LMFN", ("Set5", "PSNR")] == (
        "<b>32.50</b><sup>†</sup>"
    )
    assert (
        cell_frame(report.tables[2], LATEX).xs("×4", level="block").loc["VapSR", ("Set5", "SSIM")] == "0.8978"
    )
