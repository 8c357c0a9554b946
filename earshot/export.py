"""Export feedback for product teams as CSV, Excel (XLSX) or JSON lines.

Rows are streamed from the database in batches and written as they arrive, so memory
stays flat however large the table is.

Columns (stable order; new columns are only ever appended):

    ref, created_at, updated_at, product, type, category, description, benefit,
    frequency, importance, sentiment, supporters, status, tags, source, campaign_id,
    channel, language, complete, consent

With ``include_contact=True`` the columns ``contact`` and ``contact_consent_at`` follow;
they are filled only for items whose author consented to be contacted.

Times are UTC. CSV and XLSX cells that a spreadsheet would run as a formula (starting
with = + - @, a tab or a carriage return) are prefixed with a single quote.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, and_, func, select, true
from sqlalchemy.orm import Session

from earshot.storage.models import Contact, Feedback

Format = Literal["csv", "xlsx", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "xlsx", "jsonl")

EXPORT_COLUMNS: tuple[str, ...] = (
    "ref",
    "created_at",
    "updated_at",
    "product",
    "type",
    "category",
    "description",
    "benefit",
    "frequency",
    "importance",
    "sentiment",
    "supporters",
    "status",
    "tags",
    "source",
    "campaign_id",
    "channel",
    "language",
    "complete",
    "consent",
)
CONTACT_COLUMNS: tuple[str, ...] = ("contact", "contact_consent_at")

_FEEDBACK_COLUMNS = [getattr(Feedback, name) for name in EXPORT_COLUMNS]
_CONSENT = EXPORT_COLUMNS.index("consent")

# Rows fetched per round trip: large enough to amortise it, small enough to stay flat.
BATCH_SIZE = 2000

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Excel's sheet limit, header included; longer exports continue on a new sheet.
XLSX_MAX_ROWS = 1_048_576
_XLSX_WIDTHS = {
    "ref": 10,
    "created_at": 19,
    "updated_at": 19,
    "description": 60,
    "benefit": 40,
    "tags": 24,
    "campaign_id": 14,
    "contact": 28,
    "contact_consent_at": 19,
}


class ExportFilter(BaseModel):
    """Which items to export; every field left empty means "any".

    `since` is inclusive and `until` exclusive (both on created_at); naive times are UTC.
    The text filters accept one value, a list, or a comma-separated string.
    """

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    until: datetime | None = None
    product: list[str] | None = None
    type: list[str] | None = None
    status: list[str] | None = None
    source: list[str] | None = None
    language: list[str] | None = None
    min_supporters: int | None = Field(default=None, ge=1)

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=timezone.utc)
        return v

    @field_validator("product", "type", "status", "source", "language", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.split(",")
        if isinstance(v, list | tuple):
            values = [str(x).strip() for x in v if str(x).strip()]
            return values or None
        return v


def export_query(
    filters: ExportFilter | None = None, *, include_contact: bool = False
) -> Select[Any]:
    """The SELECT behind an export, oldest first (ids grow with time and are indexed)."""
    f = filters or ExportFilter()
    stmt = select(*_FEEDBACK_COLUMNS)
    if include_contact:
        # The latest contact of each item, joined only when its author consented.
        latest = (
            select(Contact.feedback_id, func.max(Contact.id).label("cid"))
            .where(Contact.feedback_id.is_not(None))
            .group_by(Contact.feedback_id)
            .subquery()
        )
        consented = and_(latest.c.feedback_id == Feedback.id, Feedback.consent == true())
        stmt = (
            stmt.add_columns(Contact.detail, Contact.consent_at)
            .outerjoin(latest, consented)
            .outerjoin(Contact, Contact.id == latest.c.cid)
        )
    if f.since is not None:
        stmt = stmt.where(Feedback.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(Feedback.created_at < f.until)
    for name in ("product", "type", "status", "source", "language"):
        values = getattr(f, name)
        if values:
            stmt = stmt.where(getattr(Feedback, name).in_(values))
    if f.min_supporters is not None:
        stmt = stmt.where(Feedback.supporters >= f.min_supporters)
    return stmt.order_by(Feedback.id)


def export(
    session: Session,
    *,
    fmt: Format,
    out: BinaryIO | Path,
    filters: ExportFilter | None = None,
    include_contact: bool = False,
) -> int:
    """Write the matching items to `out` in `fmt`; returns the number of rows written.

    A Path is written to a temporary file beside it and renamed at the end, so a failed
    export never leaves a half-written file behind. A stream is left open.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    columns = EXPORT_COLUMNS + (CONTACT_COLUMNS if include_contact else ())
    writer = _WRITERS[fmt]
    stmt = export_query(filters, include_contact=include_contact)
    result = session.execute(stmt.execution_options(yield_per=BATCH_SIZE))
    try:
        rows = _rows(result, include_contact)
        if isinstance(out, Path):
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            try:
                with tmp.open("wb") as fh:
                    count = writer(fh, columns, rows)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
            return count
        return writer(out, columns, rows)
    finally:
        result.close()


def _rows(result: Any, include_contact: bool) -> Iterator[Sequence[Any]]:
    if not include_contact:
        yield from result
        return
    for row in result:
        # Belt and braces: the join already requires consent.
        yield row if row[_CONSENT] else (*row[: len(EXPORT_COLUMNS)], None, None)


# --- CSV ---------------------------------------------------------------------------------


def neutralise(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: Any) -> str:
    # Only text can carry a formula; numbers we format ourselves (e.g. -0.5) stay numbers.
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return str(round(value, 3))
    if isinstance(value, list):
        return neutralise("; ".join(str(v) for v in value))
    return str(value)


def _write_csv(out: BinaryIO, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    # The BOM makes Excel read the file as UTF-8 instead of the local code page.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=False)
    try:
        writer = csv.writer(text)
        writer.writerow(columns)
        count = 0
        cell = _csv_cell
        for row in rows:
            writer.writerow([cell(v) for v in row])
            count += 1
        text.flush()
    finally:
        text.detach()  # leave the caller's stream open
    return count


# --- JSON lines ----------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return value


def _write_jsonl(out: BinaryIO, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    count = 0
    dumps = json.dumps
    buf: list[str] = []
    for row in rows:
        record = {name: _json_value(v) for name, v in zip(columns, row, strict=True)}
        buf.append(dumps(record, ensure_ascii=False))
        count += 1
        if len(buf) >= BATCH_SIZE:
            out.write(("\n".join(buf) + "\n").encode("utf-8"))
            buf.clear()
    if buf:
        out.write(("\n".join(buf) + "\n").encode("utf-8"))
    return count


# --- XLSX ----------------------------------------------------------------------------------


def _xlsx_cell_fn() -> Callable[[Any], Any]:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value: Any) -> Any:
        if isinstance(value, str):
            # openpyxl refuses control characters; drop them rather than fail the export.
            return neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))
        if isinstance(value, datetime):
            # Excel has no time zones: write UTC wall time.
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        if isinstance(value, list):
            return neutralise(ILLEGAL_CHARACTERS_RE.sub("", "; ".join(str(v) for v in value)))
        return value

    return cell


def _write_xlsx(out: BinaryIO, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    cell = _xlsx_cell_fn()
    bold = Font(bold=True)
    last_col = get_column_letter(len(columns))

    def new_sheet(n: int) -> Any:
        ws = wb.create_sheet(title="feedback" if n == 1 else f"feedback {n}")
        # Write-only sheets take layout before the first row and filters at close.
        for i, name in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = _XLSX_WIDTHS.get(name, 12)
        ws.freeze_panes = "A2"
        header = []
        for name in columns:
            c = WriteOnlyCell(ws, value=name)
            c.font = bold
            header.append(c)
        ws.append(header)
        return ws

    sheets = 1
    ws = new_sheet(sheets)
    on_sheet = 0
    count = 0
    for row in rows:
        if on_sheet == XLSX_MAX_ROWS - 1:
            ws.auto_filter.ref = f"A1:{last_col}{on_sheet + 1}"
            sheets += 1
            ws = new_sheet(sheets)
            on_sheet = 0
        ws.append([cell(v) for v in row])
        on_sheet += 1
        count += 1
    ws.auto_filter.ref = f"A1:{last_col}{on_sheet + 1}"
    wb.save(out)
    return count


_WRITERS: dict[str, Callable[[BinaryIO, Sequence[str], Iterator[Sequence[Any]]], int]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "xlsx": _write_xlsx,
}
