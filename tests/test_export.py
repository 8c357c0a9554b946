"""Exports for product teams: stable columns, safe cells, filters, contact rule, formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from earshot.feedback import queries as feedback_queries
from earshot.feedback.schemas import FeedbackIn, FeedbackType, Importance, Source
from earshot.insights.export import (
    CONTACT_COLUMNS,
    EXPORT_COLUMNS,
    ExportFilter,
    export,
    neutralise,
)
from earshot.storage.models import Feedback

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)


def make(session: Session, *, at: datetime = T0, **fields: Any) -> Feedback:
    """A stored item created at `at`; extra ORM-only fields (status, supporters, tags) too."""
    orm_only = {k: fields.pop(k) for k in ("status", "supporters", "tags") if k in fields}
    fields.setdefault("description", "A perfectly ordinary remark")
    row = feedback_queries.create_feedback(session, item=FeedbackIn(**fields), ref_prefix="EX")
    row.created_at = at
    row.updated_at = at
    for k, v in orm_only.items():
        setattr(row, k, v)
    session.flush()
    return row


def run(session: Session, fmt: str = "csv", **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    export(session, fmt=fmt, out=buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def refs(session: Session, **filters: Any) -> set[str]:
    rows = csv_rows(run(session, filters=ExportFilter(**filters)))
    return {r[0] for r in rows[1:]}


def test_columns_have_the_documented_order() -> None:
    assert EXPORT_COLUMNS == (
        "ref", "created_at", "updated_at", "product", "type", "category", "description",
        "benefit", "frequency", "importance", "sentiment", "supporters", "status", "tags",
        "source", "campaign_id", "channel", "language", "complete", "consent",
        "theme_id", "theme",
    )  # fmt: skip


def test_csv_has_bom_header_and_values(session: Session) -> None:
    row = make(
        session,
        product="bulb",
        type=FeedbackType.idea,
        description="Dim to 1% please, ça serait génial",
        importance=Importance.important,
        sentiment=-0.25,
        tags=["night", "dimming"],
        source=Source.campaign,
        campaign_id="spring",
    )
    data = run(session)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data)
    assert rows[0] == list(EXPORT_COLUMNS)
    got = dict(zip(rows[0], rows[1], strict=True))
    assert got["ref"] == row.ref
    assert got["created_at"] == "2024-03-01 09:30:00"
    assert got["description"] == "Dim to 1% please, ça serait génial"
    assert (got["product"], got["type"], got["category"]) == ("bulb", "idea", "innovation")
    assert got["sentiment"] == "-0.25"  # a number, not neutralised
    assert got["tags"] == "night; dimming"
    assert (got["source"], got["campaign_id"], got["complete"], got["consent"]) == (
        "campaign",
        "spring",
        "true",
        "false",
    )
    assert got["benefit"] == "" and got["supporters"] == "1" and got["status"] == "new"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_cells_are_neutralised_in_csv(session: Session, start: str) -> None:
    row = make(session, tags=["=cmd"])
    # Set on the row: the capture schema strips leading whitespace, an import might not.
    row.description = f'{start}HYPERLINK("http://evil.example","x")'
    session.flush()
    window = ExportFilter(since=T0, until=T0 + timedelta(seconds=1))
    got = dict(zip(*csv_rows(run(session, filters=window))[:2], strict=True))
    assert got["description"].startswith("'" + start)
    assert got["tags"] == "'=cmd"


def test_neutralise_leaves_ordinary_text() -> None:
    assert neutralise("fine = good") == "fine = good"
    assert neutralise("=1+1") == "'=1+1"


def test_each_filter_works(session: Session) -> None:
    a = make(session, at=T0, product="bulb", type=FeedbackType.idea, language="en")
    b = make(session, at=T0 + timedelta(days=2), product="plug", type=FeedbackType.problem)
    c = make(
        session,
        at=T0 + timedelta(days=4),
        product="plug",
        type=FeedbackType.idea,
        source=Source.after_service,
        language="nl",
        status="planned",
        supporters=5,
    )
    assert refs(session) >= {a.ref, b.ref, c.ref}
    assert refs(session, since=T0 + timedelta(days=1), until=T0 + timedelta(days=3)) == {b.ref}
    assert refs(session, since=T0 + timedelta(days=2), until=T0 + timedelta(days=9)) == {
        b.ref,
        c.ref,
    }
    in_range = {"since": T0 - timedelta(hours=1), "until": T0 + timedelta(days=5)}
    assert refs(session, **in_range, product="plug") == {b.ref, c.ref}
    assert refs(session, **in_range, product="bulb,plug") == {a.ref, b.ref, c.ref}
    assert refs(session, **in_range, type="idea") == {a.ref, c.ref}
    assert refs(session, **in_range, status=["planned"]) == {c.ref}
    assert refs(session, **in_range, source="after_service") == {c.ref}
    assert refs(session, **in_range, language="nl") == {c.ref}
    assert refs(session, **in_range, min_supporters=2) == {c.ref}
    assert refs(session, **in_range, product="plug", type="problem") == {b.ref}


def test_naive_filter_times_are_utc() -> None:
    f = ExportFilter(since=datetime(2024, 1, 1))
    assert f.since == datetime(2024, 1, 1, tzinfo=timezone.utc)


def test_contact_only_on_request_and_with_consent(session: Session) -> None:
    yes = make(
        session,
        customer_key="c" * 32,
        consent=True,
        consent_version="v1",
        contact="ann@example.org",
    )
    no = make(session, customer_key="d" * 32, consent=False, contact="bob@example.org")
    window = ExportFilter(since=T0, until=T0 + timedelta(seconds=1))

    plain = run(session, filters=window)
    assert b"@example.org" not in plain
    assert csv_rows(plain)[0] == list(EXPORT_COLUMNS)

    rows = csv_rows(run(session, filters=window, include_contact=True))
    assert rows[0] == [*EXPORT_COLUMNS, *CONTACT_COLUMNS]
    by_ref = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_ref[yes.ref]["contact"] == "ann@example.org"
    assert by_ref[yes.ref]["contact_consent_at"] != ""
    assert by_ref[no.ref]["contact"] == "" and by_ref[no.ref]["contact_consent_at"] == ""
    assert len(rows) == 3  # one row per item, whatever the contacts

    lines = run(session, "jsonl", filters=window, include_contact=True).decode().splitlines()
    records = {r["ref"]: r for r in map(json.loads, lines)}
    assert records[yes.ref]["contact"] == "ann@example.org"
    assert records[no.ref]["contact"] is None


def test_contact_of_consented_item_even_after_consent_withdrawn_is_hidden(session: Session) -> None:
    row = make(session, customer_key="e" * 32, consent=True, contact="cy@example.org")
    row.consent = False  # the author withdrew consent; the contact row is not yet erased
    session.flush()
    data = run(
        session,
        filters=ExportFilter(since=T0, until=T0 + timedelta(seconds=1)),
        include_contact=True,
    )
    assert b"cy@example.org" not in data


def test_jsonl_round_trip(session: Session) -> None:
    row = make(
        session,
        product="hub",
        type=FeedbackType.complaint,
        description='Quotes " and\nnewlines, émoji 🎉',
        benefit="less waiting",
        sentiment=-0.8,
        tags=["wifi", "setup"],
    )
    data = run(session, "jsonl", filters=ExportFilter(since=T0, until=T0 + timedelta(seconds=1)))
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert list(rec) == list(EXPORT_COLUMNS)
    assert rec["ref"] == row.ref
    assert datetime.fromisoformat(rec["created_at"]) == T0
    assert rec["description"] == 'Quotes " and\nnewlines, émoji 🎉'
    assert rec["tags"] == ["wifi", "setup"] and rec["sentiment"] == -0.8
    assert rec["supporters"] == 1 and rec["complete"] is True and rec["consent"] is False
    assert rec["campaign_id"] is None


def test_xlsx_opens_with_header_style_and_filter(session: Session, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    make(session, description="=cmd|' /C calc'!A0", sentiment=-0.5, tags=["a"])
    make(session, description="bell\x07 rings", at=T0 + timedelta(seconds=1))
    out = tmp_path / "feedback.xlsx"
    n = export(
        session,
        fmt="xlsx",
        out=out,
        filters=ExportFilter(since=T0, until=T0 + timedelta(seconds=2)),
    )
    assert n == 2
    assert not list(tmp_path.glob(".*.tmp"))
    ws = load_workbook(out).active
    assert ws is not None
    header = [c.value for c in ws[1]]
    assert header == list(EXPORT_COLUMNS)
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:V{n + 1}"
    assert ws.column_dimensions["G"].width == 60  # description
    cols = {name: i for i, name in enumerate(header)}
    row2 = [c.value for c in ws[2]]
    assert row2[cols["description"]] == "'=cmd|' /C calc'!A0"
    assert row2[cols["sentiment"]] == -0.5
    assert row2[cols["created_at"]] == T0.replace(tzinfo=None)
    assert row2[cols["consent"]] is False
    assert [c.value for c in ws[3]][cols["description"]] == "bell rings"


def test_export_to_path_is_atomic_on_failure(session: Session, tmp_path: Path, monkeypatch) -> None:
    import earshot.insights.export as mod

    make(session)
    out = tmp_path / "out.csv"
    out.write_bytes(b"previous export")

    def boom(*_: Any) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setitem(mod._WRITERS, "csv", boom)
    with pytest.raises(RuntimeError):
        export(session, fmt="csv", out=out)
    assert out.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_unknown_format_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export(session, fmt="pdf", out=io.BytesIO())  # type: ignore[arg-type]


def test_export_streams_with_yield_per(session: Session, monkeypatch) -> None:
    """The query asks for batches, so large tables are never loaded whole."""
    from sqlalchemy.engine import Connection

    import earshot.insights.export as mod

    seen: list[dict[str, Any]] = []
    real = Connection.execute

    def spy(self: Connection, stmt: Any, *a: Any, **kw: Any) -> Any:
        if getattr(stmt, "is_select", False):
            seen.append(dict(stmt.get_execution_options()))
        return real(self, stmt, *a, **kw)

    monkeypatch.setattr(Connection, "execute", spy)
    monkeypatch.setattr(mod, "BATCH_SIZE", 3)
    for i in range(7):
        make(session, at=T0 + timedelta(seconds=i))
    # JSON lines: CSV on PostgreSQL streams through COPY instead (tested below).
    data = run(session, "jsonl", filters=ExportFilter(since=T0, until=T0 + timedelta(seconds=7)))
    assert seen and seen[-1].get("yield_per") == 3
    assert len(data.splitlines()) == 7


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(
    session: Session, tmp_path: Path, monkeypatch
) -> None:
    from openpyxl import load_workbook

    import earshot.insights.export as mod

    monkeypatch.setattr(mod, "XLSX_MAX_ROWS", 4)  # header + 3 rows per sheet
    for i in range(5):
        make(session, at=T0 + timedelta(seconds=i))
    out = tmp_path / "big.xlsx"
    window = ExportFilter(since=T0, until=T0 + timedelta(seconds=5))
    assert export(session, fmt="xlsx", out=out, filters=window) == 5
    wb = load_workbook(out)
    assert wb.sheetnames == ["feedback", "feedback 2"]
    first, second = wb["feedback"], wb["feedback 2"]
    assert first.max_row == 4 and second.max_row == 3
    assert [c.value for c in second[1]] == list(EXPORT_COLUMNS)
    assert first.auto_filter.ref == "A1:V4" and second.auto_filter.ref == "A1:V3"


TRICKY = [
    'Quotes " and, commas',
    "two\nlines and a\r\nCRLF",
    '=HYPERLINK("http://evil.example")',
    "+1 more",
    "-2 less",
    "@SUM(A1:A9)",
    "\tleading tab",
    "\rleading CR",
    "émoji 🎉, ça, 日本語",
    "'already quoted",
    " leading space",
]


def reference_csv(rows: list[Feedback]) -> bytes:
    """The CSV of `rows` as plain Python would write it: the spec of every cell."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        cells: list[Any] = []
        for name in EXPORT_COLUMNS:
            # theme_id, theme: these rows are in no theme.
            v: Any = getattr(row, name, None)
            if name in ("created_at", "updated_at"):
                v = v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            elif name in ("complete", "consent"):
                v = "true" if v else "false"
            elif name == "tags":
                v = neutralise("; ".join(v)) if v else ""
            elif isinstance(v, str):
                v = neutralise(v)
            cells.append(v)
        writer.writerow(cells)
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "rows"])
def test_csv_cells_match_plain_python_for_tricky_values(
    session: Session, monkeypatch, copy: bool
) -> None:
    """The database renders every CSV cell (and PostgreSQL quotes them, through COPY);
    the bytes must be what csv.writer makes of the values, neutralised, in Python."""
    import earshot.insights.export as mod

    monkeypatch.setattr(mod, "COPY_CSV", copy)
    sentiments = [1.0, 0.0, -0.0, -1.0, 0.1234, -0.5, None, 5e-05, 0.30000000000000004]
    rows = []
    for i, text in enumerate(TRICKY + ["plain"] * 3):
        row = make(session, at=T0 + timedelta(seconds=i))
        row.description = text  # set on the row: the capture schema would strip some
        row.benefit = TRICKY[(-1 - i) % len(TRICKY)] if i % 2 else ("" if i % 4 == 0 else None)
        row.product = ["=cmd", "-x", "bulb", None][i % 4]
        row.frequency = "+daily" if i == 3 else None
        row.sentiment = sentiments[i % len(sentiments)]
        row.supporters = i + 1
        row.tags = [["=cmd", "a,b", 'q"t'], [], ["wifi"], [""], ["-neg", "é"]][i % 5]
        row.status = "@planned" if i == 5 else "new"
        rows.append(row)
    session.flush()
    for row in rows:
        session.refresh(row)  # the stored values: what the database has to render
    window = ExportFilter(since=T0, until=T0 + timedelta(seconds=len(rows)))
    assert run(session, filters=window) == reference_csv(rows)
