"""A :class:`~reports.schema.Report` -> HTML (one self-contained page), LaTeX (booktabs) and Markdown files.

Formatting lives in one place: a :class:`Flavor` per output says how to escape text and how to write bold,
underline, italic, a footnote mark and a missing cell; :func:`grid` turns a table into rows of finished cell
strings, and the jinja2 templates only lay them out. Text is escaped here (templates do not autoescape), so
cell markup such as ``<b>`` or ``\\textbf`` passes through unchanged.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from reports import figure, montage
from reports.schema import DIGITS, Report, ReportTable

FORMATS = ("latex", "html", "md")
FIG_STEM = "fig1"

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "×": r"$\times$",
    "–": "--",
    "∝": r"$\propto$",
    "†": r"\textsuperscript{\dag}",
    "§": r"\textsuperscript{\S}",
    "¶": r"\textsuperscript{\P}",
    "*": r"\textsuperscript{*}",
    "≈": r"\textsuperscript{$\approx$}",
    "−": r"$-$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "σ": r"$\sigma$",
    "→": r"$\to$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(text: str) -> str:
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(text))


@dataclass(frozen=True)
class Flavor:
    name: str
    escape: Callable[[str], str]
    bold: str  # format strings with one %s
    underline: str
    italic: str
    mark: str
    dash: str


LATEX = Flavor("latex", latex_escape, r"\textbf{%s}", r"\underline{%s}", r"\textit{%s}", "%s", "--")
HTML = Flavor("html", html.escape, "<b>%s</b>", "<u>%s</u>", "<i>%s</i>", "<sup>%s</sup>", "–")
# GitHub Markdown has no underline syntax but renders <ins>; a literal * (the "resolved" mark) is escaped
def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|").replace("*", r"\*")


MARKDOWN = Flavor("md", _md_escape, "**%s**", "<ins>%s</ins>", "*%s*", "%s", "–")
PLAIN = Flavor("text", str, "%s", "%s", "%s", "%s", "–")  # a terminal table (the command's --compare output)


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")  # a difference shows its sign, with a true minus


def format_cell(
    value: float,
    field: str,
    rank: int,
    marks: str,
    published: bool,
    fl: Flavor,
    std: float = math.nan,
    ci: tuple[float, float] | None = None,
) -> str:
    """One cell: number at the field's precision, bold/underline by rank, italic if published, "± std" over
    seeds, then marks; a difference with an interval reads ``−0.12 [−0.20, −0.05]``."""
    if value is None or math.isnan(value):
        return fl.dash
    digits = DIGITS[field]
    text = f"{value:.{digits}f}"
    if rank == 1:
        text = fl.bold % text
    elif rank == 2:
        text = fl.underline % text
    if published:
        text = fl.italic % text
    if ci is not None:
        lo, hi = (_signed(v, digits) for v in ci)
        text = fl.escape(f"{_signed(value, digits)} [{lo}, {hi}]")
    elif std is not None and not math.isnan(std):
        text += fl.escape(f" ± {std:.{digits}f}")
    return text + "".join(fl.mark % fl.escape(m) for m in marks)


def cell_frame(t: ReportTable, fl: Flavor = MARKDOWN) -> pd.DataFrame:
    """The table's cells as finished strings in flavor ``fl`` (same shape as ``t.values``)."""
    out = t.values.astype(object).copy()
    for i in range(len(t.values)):
        published = t.row_kind.iloc[i] == "published"
        for j, col in enumerate(t.values.columns):
            std = t.std.iat[i, j] if t.std is not None else math.nan
            ci = t.ci.iat[i, j] if t.ci is not None else None
            out.iat[i, j] = format_cell(
                t.values.iat[i, j], col[1], int(t.rank.iat[i, j]), t.marks.iat[i, j], published, fl, std, ci
            )
    return out


def _title(titles: dict[int, str], src: int | tuple | None) -> str:
    """A cell's provenance title: one source, or each run of a mean over seeds."""
    srcs = src if isinstance(src, tuple) else (src,)
    return " | ".join(t for t in (titles.get(s, "") for s in srcs) if t)


def _provenance_titles(prov: pd.DataFrame) -> dict[int, str]:
    """A one-line description of each provenance id, for HTML title attributes."""
    titles = {}
    for r in prov.to_dict("records"):
        parts = [f"#{r['id']} {r['model']} ×{r['scale']}", r["dataset"], r["protocol"], r["source"]]
        parts += [r["checkpoint"] and f"{r['checkpoint']} {r['checkpoint_hash']}", r["device"], r["versions"]]
        parts += [r["created_at"]]
        titles[r["id"]] = " · ".join(p for p in parts if p)
    return titles


def grid(t: ReportTable, fl: Flavor, titles: dict[int, str] | None = None) -> dict:
    """The table as the templates need it: header groups, fields, blocks of rows of finished cells."""
    cells = cell_frame(t, fl)
    groups: list[dict] = []
    for col_no, (group, _) in enumerate(t.values.columns, start=2):  # column 1 holds the row labels
        if groups and groups[-1]["name"] == fl.escape(group):
            groups[-1]["span"] += 1
            groups[-1]["end"] = col_no
        else:
            groups.append({"name": fl.escape(group), "span": 1, "start": col_no, "end": col_no})
    blocks: list[dict] = []
    for i, (block, label) in enumerate(t.values.index):
        if not blocks or blocks[-1]["raw"] != block:
            blocks.append({"raw": block, "title": fl.escape(block), "rows": []})
        srcs = t.sources.iloc[i].tolist()
        blocks[-1]["rows"].append(
            {
                "label": fl.escape(label),
                "kind": t.row_kind.iloc[i],
                "cells": cells.iloc[i].tolist(),
                "titles": [html.escape(_title(titles or {}, s), quote=True) for s in srcs],
            }
        )
    return {
        "key": t.key,
        "caption": fl.escape(t.caption),
        "row_header": fl.escape(t.row_header),
        "groups": groups,
        "fields": [fl.escape(f) for _, f in t.values.columns],
        "flat_fields": [fl.escape(f"{g} {f}".strip()) for g, f in t.values.columns],
        "ncols": len(t.values.columns) + 1,
        "blocks": blocks,
        "notes": [fl.escape(n) for n in t.notes],
    }


# ----------------------------------------------------------------------------------------------------------
# templates


def _env(latex: bool = False) -> jinja2.Environment:
    loader = jinja2.PackageLoader("reports", "templates")
    opts = dict(
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )
    if latex:  # braces and % are everywhere in LaTeX: use delimiters that cannot clash
        opts |= dict(
            block_start_string="((*",
            block_end_string="*))",
            variable_start_string="(((",
            variable_end_string=")))",
            comment_start_string="((=",
            comment_end_string="=))",
        )
    return jinja2.Environment(loader=loader, autoescape=False, **opts)


def _figure_title(rep: Report) -> str:
    return rep.figure_caption.split(";")[0]


def _panels(rep: Report, fl: Flavor, ext: str) -> list[dict]:
    """Figs. 5/6 as the templates need them: id, title, escaped caption and notes, the figure file."""
    return [
        {"key": p.key, "title": p.title, "caption": fl.escape(p.caption),
         "notes": [fl.escape(n) for n in p.notes], "file": f"{p.key}.{ext}"}
        for p in rep.panels
    ]  # fmt: skip


def render_markdown(rep: Report, figure_file: str | None) -> str:
    return (
        _env()
        .get_template("report.md.j2")
        .render(
            tables=[grid(t, MARKDOWN) for t in rep.tables],
            comparisons=grid(rep.comparisons, MARKDOWN) if rep.comparisons else None,
            figure=figure_file,
            figure_caption=MARKDOWN.escape(rep.figure_caption),
            figure_notes=[MARKDOWN.escape(n) for n in rep.figure_notes],
            panels=_panels(rep, MARKDOWN, "png"),
            store=MARKDOWN.escape(rep.store),
        )
    )


def render_html(
    rep: Report, png: bytes | None, generated: str, panel_pngs: dict[str, bytes] | None = None
) -> str:
    titles = _provenance_titles(rep.provenance)
    prov = rep.provenance.astype(str).map(html.escape) if len(rep.provenance) else rep.provenance
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            tables=[grid(t, HTML, titles) for t in rep.tables],
            comparisons=grid(rep.comparisons, HTML, titles) if rep.comparisons else None,
            figure_b64=base64.b64encode(png).decode("ascii") if png else None,
            figure_caption=html.escape(rep.figure_caption),
            figure_notes=[html.escape(n) for n in rep.figure_notes],
            panels=[
                p | {"b64": base64.b64encode((panel_pngs or {})[p["key"]]).decode("ascii")}
                for p in _panels(rep, HTML, "png")
            ],
            provenance_columns=list(prov.columns),
            provenance=prov.to_dict("records"),
            store=html.escape(rep.store),
            generated=generated,
        )
    )


def render_latex(rep: Report, figure_file: str | None) -> dict[str, str]:
    """File name -> text: one file per table (and the comparisons), the figure file and a main.tex that
    \\input's them all."""
    env = _env(latex=True)
    tables = [*rep.tables, *([rep.comparisons] if rep.comparisons else [])]
    files = {f"{t.key}.tex": env.get_template("table.tex.j2").render(t=grid(t, LATEX)) for t in tables}
    files[f"{FIG_STEM}.tex"] = env.get_template("figure.tex.j2").render(
        figure=figure_file,
        caption=latex_escape(rep.figure_caption),
        notes=[latex_escape(n) for n in rep.figure_notes],
        label="fig:tradeoff",
        size=r"width=0.8\linewidth",
        what="Fig. 1 (PSNR against FLOPs)",
        missing="Fig.~1 not drawn: no model has both FLOPs and PSNR in the store.",
    )
    for p in _panels(rep, LATEX, "pdf"):
        files[f"{p['key']}.tex"] = env.get_template("figure.tex.j2").render(
            figure=p["file"], caption=p["caption"], notes=p["notes"], label=f"fig:{p['key']}",
            what=p["title"].rstrip("."),
            missing="", size=r"width=\linewidth,height=0.35\textheight,keepaspectratio",
        )  # fmt: skip
    files["main.tex"] = env.get_template("main.tex.j2").render(inputs=[Path(f).stem for f in files])
    return files


def write_report(rep: Report, out: str | Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the chosen formats under ``out`` (LaTeX in ``out/latex``); returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figs = figure.save(rep.figure, out / FIG_STEM, _figure_title(rep)) if len(rep.figure) else []
    written += figs
    for p in rep.panels:  # Figs. 5 and 6: PNG for HTML / Markdown, PDF for LaTeX
        written += montage.save(p, out / p.key)
    if "md" in formats:
        written.append(out / "report.md")
        written[-1].write_text(render_markdown(rep, f"{FIG_STEM}.png" if figs else None), encoding="utf-8")
    if "html" in formats:
        generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        png = (out / f"{FIG_STEM}.png").read_bytes() if figs else None
        panel_pngs = {p.key: (out / f"{p.key}.png").read_bytes() for p in rep.panels}
        written.append(out / "report.html")
        written[-1].write_text(render_html(rep, png, generated, panel_pngs), encoding="utf-8")
    if "latex" in formats:
        tex_dir = out / "latex"
        tex_dir.mkdir(exist_ok=True)
        # LaTeX includes the vector PDFs beside its own files, so the folder compiles on its own
        for stem in [*([FIG_STEM] if figs else []), *(p.key for p in rep.panels)]:
            pdf = tex_dir / f"{stem}.pdf"
            pdf.write_bytes((out / f"{stem}.pdf").read_bytes())
            written.append(pdf)
        for name, text in render_latex(rep, f"{FIG_STEM}.pdf" if figs else None).items():
            written.append(tex_dir / name)
            written[-1].write_text(text, encoding="utf-8")
    return written
