"""A small self-contained HTML page for the reports Evidently does not render (skew, live
performance): a title, the figures, and tables."""

from __future__ import annotations

import html
import json


def _cell(value) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, default=str)
    return html.escape("" if value is None else str(value))


def table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(none)</p>"
    heads = list(rows[0])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(h))}</td>" for h in heads) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, summary: dict, sections: list[tuple[str, list[dict]]], notes: list[str] = ()) -> str:
    items = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in summary.items())
    parts = [f"<h2>{html.escape(h)}</h2>{table(rows)}" for h, rows in sections]
    note = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}th{background:#f4f4f4}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{note}<table>{items}</table>"
        f"{''.join(parts)}</body></html>"
    )
