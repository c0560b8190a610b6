"""Self-contained HTML tables for the Snakemake report (it shows HTML inline; TSV only as a download)."""

from __future__ import annotations

import html

import pandas as pd


def html_page(title: str, sections: dict[str, pd.DataFrame | str]) -> str:
    """A self-contained HTML page: one heading per section, a table (or preformatted text) under it."""
    style = (
        "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#eee}"
    )
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, content in sections.items():
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, pd.DataFrame):
            body.append(content.to_html(index=False, na_rep="", float_format=lambda value: f"{value:.4g}")
                        if len(content) else "<p>none</p>")
        else:
            body.append(f"<pre>{html.escape(content)}</pre>")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
