"""Export feedback for product teams as CSV, Excel (XLSX) or JSON lines.

Rows are streamed from the database in batches and written as they arrive, so memory
stays flat however large the table is.

Columns (stable order; new columns are only ever appended):

    ref, created_at, updated_at, product, type, category, description, benefit,
    frequency, importance, sentiment, supporters, status, tags, source, campaign_id,
    channel, language, complete, consent, theme_id, theme

With ``include_contact=True`` the columns ``contact`` and ``contact_consent_at`` follow;
they are filled only for items whose author consented to be contacted.

Times are UTC: ``2024-03-01 09:30:00`` in CSV, ``2024-03-01T09:30:00.000000+00:00`` in
JSON lines, a date cell in XLSX. CSV and XLSX cells that a spreadsheet would run as a
formula (starting with = + - @, a tab or a carriage return) are prefixed with a single
quote; tags are joined with "; " there, and a list in JSON lines.

Speed: the database renders every CSV cell (times, booleans, tags, neutralised text) in
the SELECT itself, so a batch of rows goes straight from the driver to
``csv.writer.writerows``; on PostgreSQL the same SELECT runs under
``COPY ... TO STDOUT (FORMAT csv)`` and the server's bytes are written as they come
(a test checks both give the bytes plain Python would). JSON lines cost one orjson call
per row. No ORM objects, no per-value Python conversion; a thread fetches the next
batch while the current one is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from earshot.storage.models import Contact, Feedback, Theme, ThemeMember

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
    "theme_id",  # the item's theme (earshot/themes), empty when it is in none
    "theme",  # that theme's label
)
CONTACT_COLUMNS: tuple[str, ...] = ("contact", "contact_consent_at")

# CSV from PostgreSQL comes from COPY (same bytes as csv.writer, see tests/test_export.py).
COPY_CSV = True
# Rows fetched per round trip: large enough to amortise it, small enough to stay flat
# (a batch of rendered rows is a few MB).
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

# Kinds of column that need converting per format; anything else is text or a number.
_DATETIMES = frozenset({"created_at", "updated_at", "contact_consent_at"})
_BOOLEANS = frozenset({"complete", "consent"})
_LISTS = frozenset({"tags"})
_NUMBERS = frozenset({"sentiment", "supporters", "theme_id"})


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


# --- cells rendered by the database ------------------------------------------------------
#
# Two renderings of the same columns: "csv" gives the final text of every cell (numbers
# stay numbers for csv.writer, but PostgreSQL prints its floats for COPY), "typed" gives
# JSON-ready values (ISO times, booleans, tags as JSON text)
# for JSON lines and XLSX. The few dialect-specific bits are compiled below; SQLite stores
# UTC times as text without an offset ("2024-03-01 09:30:00.000000", see UTCDateTime).


class _CsvTime(FunctionElement[str]):
    """A UTC time as "YYYY-MM-DD HH:MM:SS"."""

    type = String()
    name = "csv_time"
    inherit_cache = True


class _IsoTime(FunctionElement[str]):
    """A UTC time as ISO 8601 with microseconds and "+00:00"."""

    type = String()
    name = "iso_time"
    inherit_cache = True


class _JoinedTags(FunctionElement[str]):
    """A JSON list's items joined with "; " and neutralised; NULL when there are none."""

    type = String()
    name = "joined_tags"
    inherit_cache = True


def _arg(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_CsvTime)
def _csv_time_sqlite(element: _CsvTime, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({_arg(element, compiler, **kw)}, 1, 19)"


@compiles(_CsvTime, "postgresql")
def _csv_time_pg(element: _CsvTime, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(({_arg(element, compiler, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"


@compiles(_IsoTime)
def _iso_time_sqlite(element: _IsoTime, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(replace(substr({_arg(element, compiler, **kw)}, 1, 26), ' ', 'T') || '+00:00')"


@compiles(_IsoTime, "postgresql")
def _iso_time_pg(element: _IsoTime, compiler: SQLCompiler, **kw: Any) -> str:
    col = _arg(element, compiler, **kw)
    return f"""to_char(({col}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


class _FirstChar(FunctionElement[int]):
    """The code point of a text's first character (NULL or 0 when there is none)."""

    type = Integer()
    name = "first_char"
    inherit_cache = True


@compiles(_FirstChar)
def _first_char_sqlite(element: _FirstChar, compiler: SQLCompiler, **kw: Any) -> str:
    return f"unicode({_arg(element, compiler, **kw)})"


@compiles(_FirstChar, "postgresql")
def _first_char_pg(element: _FirstChar, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ascii({_arg(element, compiler, **kw)})"


# Inline integers, not parameters: comparing code points is the cheapest test there is.
_FORMULA_CODES: list[Any] = [literal_column(str(ord(c))) for c in _FORMULA_START]
_QUOTE = literal_column("''''", String)  # the SQL literal for a single quote
_EMPTY = literal_column("''", String)
_TRUE = literal_column("'true'", String)
_FALSE = literal_column("'false'", String)


def _neutralised(expr: Any) -> Any:
    """SQL twin of `neutralise` (NULL stays NULL)."""
    return case((_FirstChar(expr).in_(_FORMULA_CODES), _QUOTE + expr), else_=expr)


@compiles(_JoinedTags)
def _joined_tags_sqlite(element: _JoinedTags, compiler: SQLCompiler, **kw: Any) -> str:
    col = _arg(element, compiler, **kw)  # a compiled column, not outside input
    joined = compiler.process(_neutralised(literal_column("group_concat(value, '; ')")), **kw)
    return (
        f"CASE WHEN {col} IS NULL OR {col} = '[]' THEN NULL "  # noqa: S608
        f"ELSE (SELECT {joined} FROM json_each({col})) END"
    )


@compiles(_JoinedTags, "postgresql")
def _joined_tags_pg(element: _JoinedTags, compiler: SQLCompiler, **kw: Any) -> str:
    col = _arg(element, compiler, **kw)
    joined = compiler.process(_neutralised(literal_column("string_agg(t, '; ')")), **kw)
    return (
        f"CASE WHEN ({col})::text = '[]' OR json_typeof({col}) <> 'array' THEN NULL "  # noqa: S608
        f"ELSE (SELECT {joined} FROM json_array_elements_text({col}) AS t) END"
    )


class _CsvFloat(FunctionElement[Any]):
    """A float as Python's repr() writes it: what csv.writer gives and COPY must match."""

    name = "csv_float"
    inherit_cache = True


@compiles(_CsvFloat)
def _csv_float_sqlite(element: _CsvFloat, compiler: SQLCompiler, **kw: Any) -> str:
    return _arg(element, compiler, **kw)  # fetched as a float; csv.writer uses repr()


@compiles(_CsvFloat, "postgresql")
def _csv_float_pg(element: _CsvFloat, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL prints the same shortest round-trip digits as repr(), but "1" for 1.0.
    x = _arg(element, compiler, **kw)
    return (
        f"CASE WHEN {x} = trunc({x}) AND abs({x}) < 1e15 THEN {x}::text || '.0' ELSE {x}::text END"
    )


def _render(name: str, column: Any, mode: Literal["csv", "typed"]) -> Any:
    if name in _NUMBERS:
        if mode == "csv" and isinstance(column.type, Float):
            return _CsvFloat(column).label(name)
        return column.label(name)
    if name in _DATETIMES:
        return (_CsvTime(column) if mode == "csv" else _IsoTime(column)).label(name)
    if name in _BOOLEANS:
        if mode == "csv":
            return case((column == true(), _TRUE), (column == false(), _FALSE)).label(name)
        return type_coerce(column, Boolean).label(name)
    text = type_coerce(column, Text)
    if mode == "typed":
        # Tags as their JSON text: spliced into JSON lines as is, decoded for XLSX.
        return (cast(column, Text) if name in _LISTS else text).label(name)
    # An empty text is an empty cell, like NULL (COPY would write "" for it).
    cell = _JoinedTags(column) if name in _LISTS else _neutralised(text)
    return func.nullif(cell, _EMPTY).label(name)


def export_query(
    filters: ExportFilter | None = None,
    *,
    include_contact: bool = False,
    mode: Literal["csv", "typed"] = "typed",
) -> Select[Any]:
    """The SELECT behind an export, oldest first (ids grow with time and are indexed)."""
    f = filters or ExportFilter()
    joined = {"theme_id": ThemeMember.theme_id, "theme": Theme.label}
    stmt = (
        select(
            *(_render(n, joined.get(n, getattr(Feedback, n, None)), mode) for n in EXPORT_COLUMNS)
        )
        .select_from(Feedback)
        .outerjoin(ThemeMember, ThemeMember.feedback_id == Feedback.id)
        .outerjoin(Theme, Theme.id == ThemeMember.theme_id)
    )
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
            stmt.add_columns(
                _render("contact", Contact.detail, mode),
                _render("contact_consent_at", Contact.consent_at, mode),
            )
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
    stmt = export_query(filters, include_contact=include_contact, mode=_MODES[fmt])
    query = _Query(session.connection(), stmt)
    if isinstance(out, Path):
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as fh:
                count = writer(fh, columns, query)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return count
    return writer(out, columns, query)


class _Query:
    """The export's SELECT on a connection, read in row batches or, for CSV on
    PostgreSQL, as the server's own CSV through COPY."""

    def __init__(self, conn: Connection, stmt: Select[Any]) -> None:
        self.conn = conn
        self.stmt = stmt

    @property
    def can_copy(self) -> bool:
        return COPY_CSV and self.conn.dialect.name == "postgresql"

    @contextmanager
    def batches(self) -> Iterator[Batches]:
        # Core rows, not ORM objects. yield_per turns on a server-side cursor on
        # PostgreSQL and batched fetches everywhere; each batch is a list of rows.
        result = self.conn.execute(self.stmt.execution_options(yield_per=BATCH_SIZE))
        batches = _prefetched(result.partitions())
        try:
            yield batches
        finally:
            batches.close()  # stops the fetching thread before the cursor goes
            result.close()

    @contextmanager
    def copy_csv(self) -> Iterator[Iterator[bytes]]:
        """COPY's CSV rows, one per item, each ending in "\\n" (one message per row)."""
        compiled = self.stmt.compile(
            dialect=self.conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        dbapi: Any = self.conn.connection.driver_connection  # psycopg's Connection
        sql = f"COPY ({compiled}) TO STDOUT (FORMAT csv)"
        with dbapi.cursor() as cur, cur.copy(sql, compiled.params) as copy:
            yield iter(copy)


_DONE = object()


def _prefetched(batches: Iterator[Batch], depth: int = 2) -> Generator[Batch, None, None]:
    """The same batches, fetched by a thread up to `depth` ahead of the writer.

    The database's work then overlaps with formatting instead of alternating with it:
    PostgreSQL answers the next FETCH while this process writes, and SQLite (which
    releases the GIL while it steps) runs the query on the other core.
    """
    ready: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
        except BaseException as exc:  # handed to the writer's thread
            put(exc)
        else:
            put(_DONE)

    thread = threading.Thread(target=fetch, name="earshot-export-fetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _indexes(columns: Sequence[str], kinds: frozenset[str]) -> list[int]:
    return [i for i, name in enumerate(columns) if name in kinds]


def _text_indexes(columns: Sequence[str]) -> list[int]:
    other = _DATETIMES | _BOOLEANS | _LISTS | _NUMBERS
    return [i for i, name in enumerate(columns) if name not in other]


def _tags(value: str | None) -> list[Any]:
    """Tags from their stored JSON text; "[]" (most items) without parsing."""
    if value is None or value == "[]":
        return []
    tags = json.loads(value)
    return tags if isinstance(tags, list) else []


Batch = Sequence[Sequence[Any]]
Batches = Iterator[Batch]


# --- CSV ---------------------------------------------------------------------------------


def neutralise(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _write_csv(out: BinaryIO, columns: Sequence[str], query: _Query) -> int:
    # Every cell is final text from the query (None is an empty cell), so a batch is
    # one writerows call into a buffer and one write of its UTF-8 bytes.
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    # The BOM makes Excel read UTF-8 instead of the local code page.
    out.write(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))
    if query.can_copy:
        with query.copy_csv() as rows:
            return _write_copied(out, rows)
    count = 0
    with query.batches() as batches:
        for batch in batches:
            buf.seek(0)
            buf.truncate()
            writer.writerows(batch)
            out.write(buf.getvalue().encode("utf-8"))
            count += len(batch)
    return count


def _write_copied(out: BinaryIO, rows: Iterator[bytes]) -> int:
    """COPY's rows as csv.writer ends them ("\r\n"; the quoting rules are the same)."""
    count = 0
    lines: list[bytes] = []
    for row in rows:
        lines.append(row[:-1])
        if len(lines) == BATCH_SIZE:
            lines.append(b"")
            out.write(b"\r\n".join(lines))
            count += len(lines) - 1
            lines.clear()
    if lines:
        lines.append(b"")
        out.write(b"\r\n".join(lines))
        count += len(lines) - 1
    return count


# --- JSON lines ----------------------------------------------------------------------------


def _write_jsonl(out: BinaryIO, columns: Sequence[str], query: _Query) -> int:
    # orjson writes a dict in insertion order (the column order) about four times as fast
    # as the json module; tags are already JSON text and go in verbatim as a Fragment.
    dumps, fragment = orjson.dumps, orjson.Fragment
    tags = columns.index("tags")
    count = 0
    with query.batches() as batches:
        for batch in batches:
            lines = []
            for row in batch:
                record = dict(zip(columns, row, strict=True))
                record["tags"] = fragment(row[tags] or "[]")
                lines.append(dumps(record))
            lines.append(b"")
            out.write(b"\n".join(lines))
            count += len(batch)
    return count


# --- XLSX ----------------------------------------------------------------------------------


def _write_xlsx(out: BinaryIO, columns: Sequence[str], query: _Query) -> int:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    text_ix = _text_indexes(columns)
    time_ix = _indexes(columns, _DATETIMES)
    list_ix = _indexes(columns, _LISTS)
    illegal = ILLEGAL_CHARACTERS_RE.search

    def clean(v: str) -> str:
        if illegal(v):  # openpyxl refuses control characters: drop them, not the export
            v = ILLEGAL_CHARACTERS_RE.sub("", v)
        return neutralise(v)

    def convert(row: Sequence[Any]) -> list[Any]:
        r = list(row)
        for i in text_ix:
            v = r[i]
            if v:
                r[i] = clean(v)
        for i in time_ix:
            v = r[i]
            if v is not None:  # UTC ISO text; Excel has no time zones: UTC wall time
                r[i] = datetime.fromisoformat(v).replace(tzinfo=None)
        for i in list_ix:
            tags = _tags(r[i])
            r[i] = clean("; ".join(map(str, tags))) if tags else None
        return r

    wb = Workbook(write_only=True)
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
    with query.batches() as batches:
        for row in (row for batch in batches for row in batch):
            if on_sheet == XLSX_MAX_ROWS - 1:
                ws.auto_filter.ref = f"A1:{last_col}{on_sheet + 1}"
                sheets += 1
                ws = new_sheet(sheets)
                on_sheet = 0
            ws.append(convert(row))
            on_sheet += 1
            count += 1
    ws.auto_filter.ref = f"A1:{last_col}{on_sheet + 1}"
    wb.save(out)
    return count


_WRITERS: dict[str, Callable[[BinaryIO, Sequence[str], _Query], int]] = {
    "csv": _write_csv,
    "jsonl": _write_jsonl,
    "xlsx": _write_xlsx,
}
_MODES: dict[str, Literal["csv", "typed"]] = {"csv": "csv", "jsonl": "typed", "xlsx": "typed"}
