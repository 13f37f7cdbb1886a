"""Reports as files and commands: the store left untouched (read-only opens), the library entry, the CLI, and the
LaTeX / HTML checked by pdflatex and headless Chromium where they are installed."""

from __future__ import annotations

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
from report_fixtures import LMFN, grid_values
from typer.testing import CliRunner

from harness.cli.report import command
from harness.errors import UsageError
from harness.store import Store
from reports.inputs import load_report, write_reports
from reports.render import HTML, LATEX, cell_frame, write_report
from reports.stats import paired_bootstrap

GOLDEN = Path(__file__).parent / "golden"


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
    assert "Overfull \\hbox" not in log  # Table 3's 12 metric columns are scaled to the text width
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


# ---------------------------------------------------------------------------------------------------------
# ablation grids and --compare


def test_grid_report_in_latex_and_html(grid_report, tmp_path: Path) -> None:
    write_report(grid_report, tmp_path, ("latex", "html"))
    t1 = (tmp_path / "latex" / "table1.tex").read_text()
    assert r"\underline{29.72} $\pm$ 0.03\textsuperscript{\dag}" in t1
    assert r"$-$0.30 [$-$0.32, $-$0.28]\textsuperscript{*}" in t1 and r"$\Delta$ PSNR vs LMFN" in t1
    assert r"\input{comparisons}" in (tmp_path / "latex" / "main.tex").read_text()
    t3 = (tmp_path / "latex" / "table3.tex").read_text()
    assert r"\textbf{31.65}\textsuperscript{$\approx$}" in t3
    page = (tmp_path / "report.html").read_text()
    assert "<u>29.72</u> ± 0.03<sup>†</sup>" in page and "−0.30 [−0.32, −0.28]<sup>*</sup>" in page
    assert "<h2>Comparisons. Paired PSNR differences" in page and "<b>31.65</b><sup>≈</sup>" in page
    assert 'title="#' in page and " | #" in page  # a mean over seeds names every run it came from
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
        cwd=tmp_path / "latex",
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Missing character" not in (tmp_path / "latex" / "main.log").read_text(errors="replace")


def test_cli_compare_prints_and_writes_the_comparisons(grid_store: Path, tmp_path: Path) -> None:
    args = ["report", "--store", str(grid_store), "--out", str(tmp_path), "-f", "md"]
    args += ["--compare", "lka", "lmfn", "--compare", "lkdn", "bsrn"]
    args += ["--ci-level", "0.9", "--bootstrap-seed", "3"]
    res = CliRunner().invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    g = grid_values()
    iv = paired_bootstrap(g["lka"], g[LMFN], level=0.9, seed=3)
    signed = lambda v: f"{v:+.2f}".replace("-", "−")  # noqa: E731
    cell = f"{signed(iv.mean)} [{signed(iv.lo)}, {signed(iv.hi)}]*"
    assert "LKA − LMFN" in res.output and cell in res.output and "LKDN − BSRN" in res.output
    assert "90% bootstrap intervals" in res.output and str(tmp_path / "report.md") in res.output
    md = (tmp_path / "report.md").read_text()
    assert "## Comparisons. Paired PSNR differences with 90% bootstrap intervals." in md
    assert cell.replace("*", r"\*") in md and "bootstrap seed 3, fixed" in md
    assert "90% paired bootstrap intervals" in md  # Tables 1-2 use the same level


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--compare", "lka"], "--compare takes two model names"),
        (["--compare", "lka", "lmfn", "extra"], "--compare takes two model names"),
        (["stray"], "unexpected argument 'stray'"),
        (["--compare", "lka", "nosuch"], "cannot compare 'nosuch'"),
        (["--ci-level", "1.5"], "--ci-level must be between 0 and 1"),
    ],
)
def test_cli_compare_errors_are_one_line(grid_store: Path, tmp_path: Path, args: list, needle: str) -> None:
    out = tmp_path / "o"
    res = CliRunner().invoke(_cli(), ["report", "--store", str(grid_store), "--out", str(out), *args])
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2 and needle in text and "Traceback" not in text, text
    assert len([ln for ln in text.strip().splitlines() if ln.strip()]) == 1, text
    assert not out.exists()


def test_html_with_figs_1_5_6_in_headless_chromium(figure_report, tmp_path: Path) -> None:
    """The page as a browser paints it: Fig. 1's markers, Fig. 5's crops and Fig. 6's maps all on screen (each
    tile of report_fixtures.add_figures has a solid colour no other element uses)."""
    from report_fixtures import TILE_COLOURS

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    write_report(figure_report, tmp_path, ("html",))
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3 and 'id="fig5"' in page and 'id="fig6"' in page
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chr'}", f"--screenshot={shot}", "--window-size=1400,4200", (tmp_path / "report.html").as_uri()],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.is_file(), "chromium wrote no screenshot"
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)

    def rows_of(colour: tuple[int, int, int] | list[int], width: int = 5) -> np.ndarray:
        """Screen rows with more than ``width`` pixels of ``colour``."""
        return np.nonzero((np.abs(img - np.array(colour)).max(axis=2) < 16).sum(axis=1) > width)[0]

    fig1 = rows_of([139, 163, 204], 20)  # Fig. 1's blue markers (alpha 0.65 on white); red is in titles too
    crops = rows_of(TILE_COLOURS["hr"])  # Fig. 5's HR crop
    maps = rows_of(TILE_COLOURS["lkdn"])  # LKDN's tile: Fig. 5 crop and Fig. 6 map
    assert len(fig1) and len(crops) and len(maps), "a figure is missing from the page"
    assert fig1.max() < crops.min() <= maps.min() and maps.max() > crops.max() + 50  # Fig. 1, 5, 6 in order
