"""The explanations page: each explained model's maps grouped by true class and by correct / wrong prediction,
with each method's pointing-game hit rate beside its figures and a warning where that rate is too low for the
maps to be read as explanations (a coarse map, e.g. Grad-CAM on the demo's 4³ feature grid, cannot point)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ranoflow.report.front_page import RECALL_ORDER

SELECTIONS = ("correct", "wrong")
STYLE = (
    "body{font-family:sans-serif;margin:1.2em;max-width:1300px;color:#222}"
    "table{border-collapse:collapse;margin:0.4em 0 1em 0;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}"
    "p.warn{background:#fff1d6;border-left:4px solid #e0a000;padding:4px 8px;max-width:1000px}"
    "div.pair{margin:0.6em 0 1.2em 0}div.maps{display:flex;gap:8px;flex-wrap:wrap}"
    "figure{margin:0;width:49%}figure img{width:100%}figcaption{font-size:12px;color:#333}"
    "h3{margin-bottom:0.2em}span.wrong{color:#b00000}span.correct{color:#1a7f1a}"
)


def method_rates(summary: pd.DataFrame, min_hit_rate: float) -> pd.DataFrame:
    """Per experiment and method: maps, pointing-game hit rate over the maps where it applies, median tumour
    share, and whether the hit rate reaches `min_hit_rate` (from explain/summary.tsv's pair rows)."""
    pairs = summary[summary["level"] == "pair"] if "level" in summary else summary.iloc[0:0]
    if pairs.empty:
        return pd.DataFrame(columns=["experiment", "method", "maps", "pointing_hit_rate", "n_pointing",
                                     "median_tumour_share", "reliable"])
    hits = pd.to_numeric(pairs["pointing_hit"], errors="coerce")
    rates = pairs.assign(_hit=hits, _share=pd.to_numeric(pairs["tumour_share"], errors="coerce")).groupby(
        ["experiment", "method"], sort=False).agg(
        maps=("pair", "size"), pointing_hit_rate=("_hit", "mean"), n_pointing=("_hit", "count"),
        median_tumour_share=("_share", "median")).reset_index()
    rates["reliable"] = rates["pointing_hit_rate"] >= min_hit_rate
    return rates


def warning(method: str, rate: float, min_hit_rate: float) -> str:
    """The sentence shown beside a method whose maps rarely point at the tumour ('' when they do)."""
    if pd.isna(rate) or rate >= min_hit_rate:
        return ""
    return (f"{method}: its map's maximum falls inside the tumour in {rate:.0%} of the maps (under "
            f"{min_hit_rate:.0%}), so at this resolution it is not a reliable explanation; read its figures "
            "as where the network's coarse features sit, not as what drove the rating.")


def grouped_pairs(summary: pd.DataFrame, classes: tuple[str, ...] = RECALL_ORDER) -> list[dict]:
    """The explained pairs of every experiment grouped by true class (PD first) then correct / wrong: one dict
    per group with experiment, label, selection and its rows (one per pair and method, fold then pair order)."""
    pairs = summary[summary["level"] == "pair"] if "level" in summary else summary.iloc[0:0]
    groups = []
    for experiment in dict.fromkeys(pairs.get("experiment", [])):
        mine = pairs[pairs["experiment"] == experiment]
        for label in classes:
            for selection in SELECTIONS:
                rows = mine[(mine["label"] == label) & (mine["selection"] == selection)]
                if not rows.empty:
                    groups.append({"experiment": experiment, "label": label, "selection": selection,
                                   "rows": rows.sort_values(["fold", "pair", "method"], kind="mergesort")})
    return groups


def caption(row: pd.Series) -> str:
    """A figure's caption: the true and predicted class first, then where it comes from and its scores."""
    verdict = "correct" if row["selection"] == "correct" else "wrong"
    hit = "hit" if pd.to_numeric(row["pointing_hit"], errors="coerce") == 1 else "miss"
    share = pd.to_numeric(row["tumour_share"], errors="coerce")
    return (f"<b>true {html.escape(str(row['label']))}</b>, predicted {html.escape(str(row['predicted']))} "
            f"(<span class='{verdict}'>{verdict}</span>) · {html.escape(str(row['method']))} of the "
            f"{html.escape(str(row['target']))} class · pointing {hit}, tumour share {share:.2f} · fold "
            f"{html.escape(str(row['fold']))}, {html.escape(str(row['pair']).replace('_', ' '))}")


def explanations_page(summary: pd.DataFrame, directories: Mapping[tuple[str, str], str | Path],
                      min_hit_rate: float) -> str:
    """The self-contained page. directories: (experiment, fold) -> that explain job's folder (its figures)."""
    rates = method_rates(summary, min_hit_rate)
    body = ["<h1>Explanations</h1>"]
    if rates.empty:
        body.append("<p>Nothing was explained (explain.best / explain.experiments).</p>")
    for experiment in dict.fromkeys(rates["experiment"]):
        # the method that points best first, in the table and beside each pair
        mine = rates[rates["experiment"] == experiment].sort_values("pointing_hit_rate", ascending=False,
                                                                    kind="mergesort")
        order = {method: i for i, method in enumerate(mine["method"])}
        body.append(f"<h2>{html.escape(str(experiment))}: pointing-game hit rate per method</h2>")
        table = mine[["method", "maps", "n_pointing", "pointing_hit_rate", "median_tumour_share"]].rename(
            columns={"n_pointing": "maps with a tumour", "pointing_hit_rate": "pointing hit rate",
                     "median_tumour_share": "median tumour share"})
        body.append(table.to_html(index=False, float_format=lambda v: f"{v:.2f}"))
        body += [f"<p class='warn'>{html.escape(text)}</p>" for text in
                 (warning(r.method, r.pointing_hit_rate, min_hit_rate) for r in mine.itertuples()) if text]
        for group in (g for g in grouped_pairs(summary) if g["experiment"] == experiment):
            hit = dict(zip(mine["method"], mine["pointing_hit_rate"]))
            body.append(f"<h3>true {group['label']}, {group['selection']}ly classified</h3>")
            for (fold, pair), rows in group["rows"].groupby(["fold", "pair"], sort=False):
                folder = Path(directories[(str(experiment), str(fold))])
                figures = []
                for _, row in rows.sort_values("method", key=lambda m: m.map(order), kind="mergesort").iterrows():
                    data = base64.b64encode((folder / row["figure"]).read_bytes()).decode()
                    rate = hit.get(row["method"])
                    note = f" · {row['method']} hit rate {rate:.0%}" if pd.notna(rate) else ""
                    figures.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{caption(row)}"
                                   f"{html.escape(note)}</figcaption></figure>")
                body.append(f"<div class='pair'><div class='maps'>{''.join(figures)}</div></div>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Explanations</title><style>{STYLE}</style>"
            f"</head><body>{''.join(body)}</body></html>")
