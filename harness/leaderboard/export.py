"""Leaderboard rows -> md | csv | json | html | parquet, and the push to a Hub dataset repo."""

from __future__ import annotations

import html
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.leaderboard.columns import COLUMNS, NAMES

FORMATS = ["md", "csv", "json", "html", "parquet"]
SHORT = [c for c in NAMES if c not in ("versions", "unit_ids", "setting_id")]  # what md shows


def _schema() -> pa.Schema:
    strings = {"model", "model_id", "kind", "revision", "task", "recipe", "setting", "setting_id", "weights_source", "versions",
               "created_at", "unit_ids"}
    ints = {"seeds", "measured", "n_members", "runs", "failed"}
    return pa.schema([
        pa.field(c, pa.string() if c in strings else pa.int64() if c in ints else pa.float64(), metadata={"doc": d})
        for c, d in COLUMNS
    ])


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_schema())


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def md_cell(v: Any) -> str:
    """A markdown table cell that stays one cell: one line, '|' escaped, HTML escaped (a Hub README renders it)."""
    return html.escape(" ".join(_cell(v).split()), quote=False).replace("|", "\\|")


def to_md(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(SHORT) + " |", "|" + "---|" * len(SHORT)]
    for r in rows:
        lines.append("| " + " | ".join(md_cell(_cell(r[c])[:12] if c == "revision" else r[c]) for c in SHORT) + " |")
    return "\n".join(lines) + "\n"


def to_html(rows: list[dict]) -> str:
    head = "".join(f'<th title="{html.escape(d)}" onclick="sortBy({i})">{html.escape(c)}</th>' for i, (c, d) in enumerate(COLUMNS))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in NAMES) + "</tr>\n" for r in rows
    )
    script = (
        "function sortBy(i){const t=document.getElementById('lb'),b=t.tBodies[0],rs=[...b.rows];"
        "const d=t.dataset.col==i&&t.dataset.dir=='desc'?'asc':'desc';t.dataset.col=i;t.dataset.dir=d;"
        "const v=r=>{const x=r.cells[i].textContent,n=Number(x);return x==='-'||isNaN(n)?x:n};"
        "rs.sort((a,b)=>(v(a)>v(b)?1:v(a)<v(b)?-1:0)*(d=='asc'?1:-1));rs.forEach(r=>b.appendChild(r));}"
    )
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>recon-harness leaderboard</title>"
        f"<script>{script}</script></head><body>\n<table id=\"lb\"><thead><tr>{head}</tr></thead>\n<tbody>\n{body}"
        "</tbody></table>\n</body></html>\n"
    )


def _as_table(tbl: pa.Table, fmt: str) -> bytes:
    """csv or parquet: the whole table, every column."""
    if fmt == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(tbl, sink)
        return sink.getvalue()
    sink = pa.BufferOutputStream()
    pq.write_table(tbl, sink)
    return sink.getvalue().to_pybytes()


def _as_json(rows: list[dict]) -> bytes:
    return (json.dumps(rows, indent=1, default=str) + "\n").encode()


def render(rows: list[dict], fmt: str) -> bytes:
    if fmt == "md":
        return to_md(rows).encode()
    if fmt == "html":
        return to_html(rows).encode()
    if fmt == "json":
        return _as_json(rows)
    if fmt in ("csv", "parquet"):
        return _as_table(table(rows), fmt)
    raise HarnessError("format", fmt, f"choose one of {', '.join(FORMATS)}")


FAILURE_SHORT = ["unit_id", "model", "task", "seed", "stage", "victim", "shard", "error_type", "message"]  # md, html


def render_failures(failures: pa.Table, fmt: str) -> bytes:
    """The failures table (`leaderboard --failures`) in a leaderboard format: csv, json and parquet carry every
    column (settings, traceback included), md and html the columns that say what failed."""
    if fmt in ("csv", "parquet"):
        return _as_table(failures, fmt)
    rows = failures.to_pylist()
    if fmt == "json":
        return _as_json(rows)
    if fmt == "md":
        lines = ["| " + " | ".join(FAILURE_SHORT) + " |", "|" + "---|" * len(FAILURE_SHORT)]
        lines += ["| " + " | ".join(md_cell(r[c]) for c in FAILURE_SHORT) + " |" for r in rows]
        return ("\n".join(lines) + "\n").encode()
    if fmt == "html":
        head = "".join(f"<th>{c}</th>" for c in FAILURE_SHORT)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[c]))}</td>" for c in FAILURE_SHORT) + "</tr>\n"
                       for r in rows)
        return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>recon-harness failures</title></head><body>\n"
                f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>\n</body></html>\n").encode()
    raise HarnessError("format", fmt, f"choose one of {', '.join(FORMATS)}")


def write(rows: list[dict], fmt: str, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(render(rows, fmt))
    return out


def hf_api() -> Any:
    from huggingface_hub import HfApi

    return HfApi()


def push_to_hub(rows: list[dict], repo_id: str, api: Any | None = None, message: str | None = None,
                public: bool = False) -> str:
    """Every format plus a README into a Hub *dataset* repo, created private unless `public` (an existing repo keeps
    its visibility); returns the commit (or what the client returns)."""
    from harness.backbones.resolve import hub_offline

    if "/" not in repo_id:
        raise HarnessError("push-to-hub", repo_id, "expected ORG/NAME of a dataset repo")
    if api is None and hub_offline():
        raise HarnessError("push-to-hub", repo_id, "HF_HUB_OFFLINE=1: pushing needs the network; unset it")
    api = api or hf_api()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            write(rows, fmt, Path(tmp) / f"leaderboard.{fmt}")
        doc = "\n".join(f"- `{c}`: {d}" for c, d in COLUMNS)
        readme = f"---\nconfigs:\n- config_name: default\n  data_files: leaderboard.parquet\n---\n# recon-harness leaderboard\n\n{to_md(rows)}\n## Columns\n\n{doc}\n"
        (Path(tmp) / "README.md").write_text(readme, encoding="utf-8")
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=not public)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=tmp, repo_type="dataset",
            commit_message=message or f"leaderboard: {len(rows)} rows",
        )
    return str(getattr(info, "oid", info))
