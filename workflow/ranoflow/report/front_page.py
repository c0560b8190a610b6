"""The report's front page ("At a glance"): who won, by how much and on which classes, from summary.tsv.

Two narrow tables (no horizontal scrolling at 1400 px): every row with its balanced accuracy, CI, macro-F1,
per-class recall (PD first) and verdict, and the ablations as paired differences against the reference
experiment, grouped by ablation."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from ranoflow.evaluate.ablations import grouped_differences
from ranoflow.evaluate.summary_table import is_oracle

# PD first: missing progression is the costly error, and the class networks miss most on the demo.
RECALL_ORDER = ("PD", "SD", "PR", "CR")
STYLE = (
    "body{font-family:sans-serif;margin:1.2em;max-width:1100px;color:#222}"
    "table.glance{border-collapse:collapse;margin:0.4em 0 1.4em 0;font-size:13px}"
    "table.glance td,table.glance th{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}"
    "table.glance th{background:#eee}table.glance td.name{text-align:left}"
    "table.glance td.low{background:#f8d0d0;font-weight:bold}"
    "span.tag{font-size:10px;padding:0 4px;border-radius:3px;margin-left:3px;white-space:nowrap}"
    "span.oracle{background:#ddd;color:#444}span.reference{background:#222;color:#fff}"
    "td.better{color:#1a7f1a}td.worse{color:#b00000}td.indistinguishable{color:#666}"
    "p.note{font-size:12px;color:#555;max-width:900px}img{max-width:100%}"
)


def _number(value: object, digits: int = 2) -> str:
    number = pd.to_numeric(value, errors="coerce")
    return "" if pd.isna(number) else f"{float(number):.{digits}f}"


def _interval(value: object, low: object, high: object, signed: bool = False) -> str:
    number = pd.to_numeric(value, errors="coerce")
    if pd.isna(number):
        return ""
    text = f"{float(number):+.2f}" if signed else f"{float(number):.2f}"
    low_text, high_text = _number(low), _number(high)
    return f"{text} [{low_text}, {high_text}]" if low_text and high_text else text


def per_class_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per summary row, in ranking order: row, BA (median, pooled 95 % CI), macro-F1 (median),
    recall per class PD, SD, PR, CR (pooled), verdict against the reference; `oracle` and `reference` flag
    the rows so labelled."""
    out = pd.DataFrame({
        "row": summary["experiment"],
        "BA [95 % CI]": [_interval(r.median_balanced_accuracy, r.ci95_low, r.ci95_high) for r in summary.itertuples()],
        "macro-F1": summary["median_macro_f1"].map(_number),
        **{f"recall {c}": summary[f"recall_{c}"].map(_number) for c in RECALL_ORDER},
        "verdict": summary.get("verdict", pd.Series("", index=summary.index)).fillna("").astype(str),
    })
    out["oracle"] = summary["oracle"].map(is_oracle) if "oracle" in summary else False
    out["reference"] = out["verdict"] == "reference"
    return out.reset_index(drop=True)


def differences_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The compared rows grouped by ablation (baselines last), the reference first and then the largest
    difference: ablation, row, vs, ΔBA [95 % CI], Δmacro-F1 [95 % CI], verdict, oracle."""
    compared = grouped_differences(summary) if "verdict" in summary else summary.iloc[0:0]
    return pd.DataFrame({
        "ablation": compared.get("ablation", pd.Series(dtype=str)).fillna(""),
        "row": compared.get("experiment", pd.Series(dtype=str)),
        "vs": compared.get("reference_experiment", pd.Series(dtype=str)).fillna(""),
        "ΔBA [95 % CI]": [_interval(r.delta_balanced_accuracy, r.delta_balanced_accuracy_ci95_low,
                                    r.delta_balanced_accuracy_ci95_high, signed=True) for r in compared.itertuples()],
        "Δmacro-F1 [95 % CI]": [_interval(r.delta_macro_f1, r.delta_macro_f1_ci95_low, r.delta_macro_f1_ci95_high,
                                          signed=True) for r in compared.itertuples()],
        "verdict": compared.get("verdict", pd.Series(dtype=str)),
        "oracle": compared["oracle"].map(is_oracle) if "oracle" in compared else False,
    }).reset_index(drop=True)


def headline(summary: pd.DataFrame, experiments: list[str], low_recall: float) -> str:
    """One sentence: the best configured experiment with its BA and CI, and its weakest classes."""
    rows = summary[summary["experiment"].isin(experiments)]
    if rows.empty:
        return "No experiment has been scored yet."
    best = rows.iloc[0]  # summary.tsv is ranked
    recalls = {c: pd.to_numeric(best[f"recall_{c}"], errors="coerce") for c in RECALL_ORDER}
    weak = [f"{c} {value:.2f}" for c, value in recalls.items() if not pd.isna(value) and value < low_recall]
    text = (f"Best experiment: {best['experiment']}, median balanced accuracy "
            f"{_interval(best['median_balanced_accuracy'], best['ci95_low'], best['ci95_high'])}")
    if weak:
        text += f"; recall below {low_recall:g}: {', '.join(weak)}"
    return text + "."


def _name_cell(name: str, oracle: bool, reference: bool, compact: bool) -> str:
    shown = html.escape(name).replace("_", "_<wbr>") if compact else html.escape(name)
    tags = ('<span class="tag oracle">oracle</span>' if oracle else "") + (
        '<span class="tag reference">reference</span>' if reference else "")
    return f'<td class="name">{shown}{tags}</td>'


def render_table(frame: pd.DataFrame, low_recall: float | None = None, compact: bool = False) -> str:
    """A per_class_table or differences_table as HTML: names tagged oracle / reference, recalls under
    `low_recall` highlighted, verdicts coloured. `compact`: names may wrap at underscores (the landing column)."""
    shown = [c for c in frame.columns if c not in ("oracle", "reference")]
    header = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for column in shown:
            value = str(row[column])
            if column == "row":
                cells.append(_name_cell(value, bool(row.get("oracle")), bool(row.get("reference", False)), compact))
            elif column.startswith("recall ") and low_recall is not None and value and float(value) < low_recall:
                cells.append(f'<td class="low">{value}</td>')
            elif column == "verdict":
                shy = value.replace("indistinguishable", "indistin&shy;guishable") if compact else value
                cells.append(f'<td class="{html.escape(value)}">{shy}</td>')
            elif compact and column.startswith("BA") and " [" in value:
                point, interval = value.split(" [", 1)
                cells.append(f'<td style="white-space:nowrap">{point}<br>[{html.escape(interval)}</td>')
            elif column == "ablation":
                cells.append(f'<td class="name">{html.escape(value)}</td>')
            else:
                cells.append(f"<td>{html.escape(value)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="glance"><tr>{header}</tr>{"".join(body)}</table>'


def _image(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:image/png;base64,{data}">'


TABLE_NOTE = (
    "BA: median balanced accuracy over the test folds, with the 95 % CI of the pooled balanced accuracy from "
    "a bootstrap that resamples patients; macro-F1: median over folds; recall per class pooled over the folds, "
    "PD first; cells under {low:g} are red. Every row is scored on the same common test pairs. Verdict: the "
    "row's paired difference against the reference experiment (better / worse when its CI excludes 0). "
    "<b>oracle</b> rows read the demo generator's own segmentations: consistency checks, not competitors."
)


def front_page(summary: pd.DataFrame, ranking_png: str | Path, ablations_png: str | Path, experiments: list[str],
               low_recall: float) -> str:
    """The self-contained front page: headline, ranking figure, per-class table, ablation figure and table."""
    body = [
        "<h1>At a glance</h1>",
        f"<p><b>{html.escape(headline(summary, experiments, low_recall))}</b></p>",
        "<h2>Ranking of every row, with 95 % CIs</h2>", _image(ranking_png, "ranking"),
        "<h2>Per class</h2>", render_table(per_class_table(summary), low_recall),
        f'<p class="note">{TABLE_NOTE.format(low=low_recall)}</p>',
        "<h2>Ablations: paired differences against the reference experiment</h2>",
        _image(ablations_png, "ablations"), render_table(differences_table(summary)),
        '<p class="note">Δ: row minus reference on the common test pairs, pooled over the folds; 95 % CI from '
        "a bootstrap that resamples patients, both rows keeping the same resampled pairs.</p>",
    ]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>At a glance</title><style>{STYLE}</style>"
            f"</head><body>{''.join(body)}</body></html>")


def landing_table(summary: pd.DataFrame, ranking_png: str | Path, experiments: list[str], low_recall: float) -> str:
    """The ranking figure and the per-class table as an HTML fragment for the report's landing text (a column
    about 500 px wide; the figure is embedded, since the landing text cannot reference a result file)."""
    compact_style = STYLE.replace("font-size:13px", "font-size:11px").replace("padding:3px 7px", "padding:2px 3px")
    rules = "".join(f"{rule}}}" for rule in compact_style.split("}") if rule.startswith(("table", "span", "td")))
    return (f"<style>{rules}</style><p><b>{html.escape(headline(summary, experiments, low_recall))}</b></p>"
            f"{_image(ranking_png, 'ranking')}"
            f"{render_table(per_class_table(summary), low_recall, compact=True)}"
            f'<p style="font-size:11px">{TABLE_NOTE.format(low=low_recall)}</p>')
