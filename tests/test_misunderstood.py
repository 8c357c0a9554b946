"""The Misunderstood queue: recording (redacted), retention, grouping, the learned training
files (writer, validation, leak check, build) and the dashboard page, on both databases."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from earshot.accounts.service import add_user
from earshot.knowledge import learned, misunderstood
from earshot.knowledge.kb import KnowledgeBaseError, build_rasa_files, load_kb, render_nlu
from earshot.privacy.erasure import erase_customer, purge
from earshot.settings import ROOT, load_settings
from earshot.storage.db import session_scope
from earshot.storage.models import DashboardUser, MisunderstoodEvent, MisunderstoodMessage, utcnow

RASA_DIR = ROOT / "rasa_project"
LANGS = ("en", "nl")
KEY = "c" * 32


def parse(*ranked: tuple[str, float], text: str = "x") -> dict[str, Any]:
    """Rasa parse data with the FAQ selector's ranking."""
    return {
        "text": text,
        "response_selector": {
            "faq": {
                "ranking": [
                    {"intent_response_key": f"faq/{topic}", "confidence": conf}
                    for topic, conf in ranked
                ]
            }
        },
    }


def held_out_example() -> str:
    """A real question from the English held-out test set."""
    data = yaml.safe_load((RASA_DIR / "tests/nlu_holdout_en.yml").read_text(encoding="utf-8"))
    return str(data["nlu"][0]["examples"].splitlines()[0][2:])


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge base, so learned files are written to a temp dir."""
    dst = tmp_path / "kb"
    shutil.copytree(ROOT / "kb", dst, ignore=shutil.ignore_patterns("learned"))
    return dst


# --- parse data ----------------------------------------------------------------------------


def test_margin_and_topics_come_from_the_selector_ranking() -> None:
    data = parse(("payment_methods", 0.48), ("payment_problem", 0.41), ("invoice", 0.05),
                 ("warranty", 0.01))  # fmt: skip
    assert misunderstood.margin(data) == pytest.approx(0.07)
    assert misunderstood.is_low_margin(data, 0.15)
    assert not misunderstood.is_low_margin(data, 0.05)
    assert [t["topic"] for t in misunderstood.considered_topics(data)] == [
        "payment_methods", "payment_problem", "invoice"]  # fmt: skip
    clear = parse(("order_track", 0.9), ("delivery_time", 0.05))
    assert not misunderstood.is_low_margin(clear, 0.15)
    assert misunderstood.margin({"text": "no selector"}) is None


# --- recording -----------------------------------------------------------------------------


def test_recorded_message_is_redacted_with_language_topics_reason_key_and_time(
    session: Session,
) -> None:
    text = "my card payment failed, mail me at jan.devries@example.org or call 06 12345678"
    before = utcnow()
    row = misunderstood.record(
        session,
        text=text,
        reason=misunderstood.FALLBACK,
        language="en",
        customer_key=KEY,
        parse_data=parse(("payment_problem", 0.4), ("payment_methods", 0.35), text=text),
    )
    assert row is not None
    session.flush()
    session.expire_all()
    got = session.scalar(select(MisunderstoodMessage).where(MisunderstoodMessage.id == row.id))
    assert got is not None
    assert got.text == "my card payment failed, mail me at [email] or call [phone]"
    assert "example.org" not in got.text and "12345678" not in got.text
    assert (got.language, got.customer_key, got.reasons) == ("en", KEY, ["fallback"])
    assert [t["topic"] for t in got.topics] == ["payment_problem", "payment_methods"]
    assert got.margin == pytest.approx(0.05)
    assert got.created_at >= before - timedelta(seconds=1) and got.assignment is None


def test_a_vote_on_a_close_answer_adds_its_reason_to_the_same_message(session: Session) -> None:
    common: dict[str, Any] = {"language": "en", "customer_key": KEY}
    first = misunderstood.record(
        session, text="report payment issue", reason=misunderstood.LOW_MARGIN,
        answered_topic="payment_methods", **common,
    )  # fmt: skip
    again = misunderstood.record(
        session, text="report payment issue", reason=misunderstood.THUMBS_DOWN, **common
    )
    assert first is not None and again is not None and again.id == first.id
    assert again.reasons == ["low_margin", "thumbs_down"]
    assert again.answered_topic == "payment_methods"
    assert misunderstood.record(session, text="/rate_answer", reason="fallback", **common) is None
    assert misunderstood.record(session, text="   ", reason="fallback", **common) is None
    with pytest.raises(ValueError):
        misunderstood.record(session, text="hello", reason="bored", **common)


def test_purge_deletes_old_messages_and_erasure_the_customers(session: Session) -> None:
    old = misunderstood.record(
        session, text="old question", reason="fallback", language="en", customer_key="o" * 32,
        now=utcnow() - timedelta(days=200),
    )  # fmt: skip
    mine = misunderstood.record(
        session, text="my question", reason="fallback", language="en", customer_key="e" * 32
    )
    other = misunderstood.record(
        session, text="their question", reason="fallback", language="en", customer_key="t" * 32
    )
    assert old and mine and other
    session.add(MisunderstoodEvent(message_id=mine.id, actor="ann", new_value="invoice"))
    session.flush()
    counts = purge(session, older_than_days=180)
    assert counts["misunderstood"] == 1
    texts = set(session.scalars(select(MisunderstoodMessage.text)))
    assert "old question" not in texts and {"my question", "their question"} <= texts

    report = erase_customer(session, customer_key="e" * 32, everything=False)
    assert report.deleted["misunderstood"] == 1
    session.expire_all()
    texts = set(session.scalars(select(MisunderstoodMessage.text)))
    assert texts >= {"their question"} and "my question" not in texts
    history = session.scalars(select(MisunderstoodEvent).where(MisunderstoodEvent.actor == "ann"))
    assert [(e.message_id, e.new_value) for e in history] == [(None, "invoice")]


# --- grouping ------------------------------------------------------------------------------


def test_similar_messages_are_grouped_and_the_newest_group_comes_first(
    session: Session,
) -> None:
    now = utcnow()
    said = [
        ("where is my parcel", 50),
        ("when will my parcel arrive", 30),
        ("can I pay with paypal", 20),
        ("do you accept paypal payments", 10),
        ("waar is mijn pakket", 5),
    ]
    rows = []
    for text, minutes in said:
        row = misunderstood.record(
            session, text=text, reason="fallback", customer_key=None,
            language="nl" if text.startswith("waar") else "en",
            now=now - timedelta(minutes=minutes),
        )  # fmt: skip
        assert row is not None
        rows.append(row)
    groups = misunderstood.group(rows)
    as_text = [[m.text for m in g.messages] for g in groups]
    assert as_text[0] == ["waar is mijn pakket"]  # newest first, languages never mixed
    assert as_text[1] == ["do you accept paypal payments", "can I pay with paypal"]
    assert as_text[2] == ["when will my parcel arrive", "where is my parcel"]
    assert len(groups) == 3


# --- learned files -------------------------------------------------------------------------


def _topics(kb_dir: Path, lang: str = "en") -> dict[str, tuple[str, ...]]:
    kb = load_kb(kb_dir, languages=LANGS)
    return {t.key: t.examples[lang] for t in kb.topics}


def test_learned_examples_are_written_reviewably_and_validated(kb_dir: Path) -> None:
    topics = _topics(kb_dir)
    tests = learned.held_out_texts([RASA_DIR / "tests"])
    leaked = held_out_example()
    result = learned.add_examples(
        kb_dir,
        language="en",
        key="payment_problem",
        texts=[
            "is it possible to report issues with payment?",
            "  IS it possible to report   issues with payment?  ",  # the same, spaced
            topics["payment_methods"][0],  # already a KB example
            leaked,  # in a test set
            "",
            "see [this](link)",
        ],
        topics=topics,
        tests=tests,
    )
    assert result.added == ["is it possible to report issues with payment?"]
    reasons = dict(result.skipped)
    assert "already learned" in reasons["IS it possible to report issues with payment?"]
    assert "payment_methods" in reasons[topics["payment_methods"][0]]
    assert "test set" in reasons[leaked]
    assert "empty" in reasons[""] and "markup" in reasons["see [this](link)"]
    path = kb_dir / "learned" / "en.yml"
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {
        "payment_problem": ["is it possible to report issues with payment?"]
    }
    with pytest.raises(learned.LearnedError, match="not a topic"):
        learned.add_examples(kb_dir, language="en", key="nope", texts=["x"], topics=topics)
    learned.add_examples(
        kb_dir, language="en", key="out_of_scope", texts=["book me a flight to Rome"],
        topics=topics,
    )  # fmt: skip
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(data) == ["payment_problem", "out_of_scope"]  # reserved keys last


def test_kb_build_trains_learned_examples_but_not_new_topic_requests(
    kb_dir: Path, tmp_path: Path
) -> None:
    (kb_dir / "learned").mkdir()
    (kb_dir / "learned" / "en.yml").write_text(
        "payment_problem:\n- is it possible to report issues with payment?\n"
        "out_of_scope:\n- book me a flight to Rome\n"
        "new_topic_needed:\n- do you sell garden furniture\n",
        encoding="utf-8",
    )
    kb = load_kb(kb_dir, languages=LANGS)
    build_rasa_files(kb, tmp_path / "rasa")
    nlu = yaml.safe_load((tmp_path / "rasa/data/generated/faq.yml").read_text(encoding="utf-8"))
    blocks = {b["intent"]: b["examples"].splitlines() for b in nlu["nlu"]}
    assert "- is it possible to report issues with payment?" in blocks["faq/payment_problem"]
    assert blocks["out_of_scope"] == ["- book me a flight to Rome"]
    assert "garden furniture" not in render_nlu(kb)
    assert learned.new_topic_requests(kb_dir, LANGS) == [("en", "do you sell garden furniture")]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("no_such_topic:\n- hello there\n", "not a topic"),
        ("invoice:\n- where is my invoice\n- Where is my  invoice\n", "twice"),
        ("invoice:\n- '{\"x\": 1}'\n", "markup"),
    ],
)
def test_invalid_learned_files_are_refused_by_the_kb(
    kb_dir: Path, content: str, problem: str
) -> None:
    (kb_dir / "learned").mkdir()
    (kb_dir / "learned" / "en.yml").write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match=problem):
        load_kb(kb_dir, languages=LANGS)


def test_learned_example_repeating_a_topic_example_is_refused(kb_dir: Path) -> None:
    example = _topics(kb_dir)["invoice"][0]
    (kb_dir / "learned").mkdir()
    (kb_dir / "learned" / "en.yml").write_text(
        yaml.safe_dump({"warranty": [example]}), encoding="utf-8"
    )
    with pytest.raises(KnowledgeBaseError, match="already an example of 'invoice'"):
        load_kb(kb_dir, languages=LANGS)


def test_build_refuses_a_learned_example_from_a_test_set(kb_dir: Path, tmp_path: Path) -> None:
    rasa = tmp_path / "rasa"
    (rasa / "tests" / "independent").mkdir(parents=True)
    (rasa / "tests" / "independent" / "split.csv").write_text(
        "text,intent\nhow can I report a failed payment,payment_problem\n", encoding="utf-8"
    )
    (kb_dir / "learned").mkdir()
    (kb_dir / "learned" / "en.yml").write_text(
        "payment_problem:\n- How can I report a failed payment\n", encoding="utf-8"
    )
    with pytest.raises(KnowledgeBaseError, match="in a test set"):
        build_rasa_files(load_kb(kb_dir, languages=LANGS), rasa)


def test_a_new_learned_file_changes_the_training_fingerprint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import scripts.train as train

    root = tmp_path / "repo"
    shutil.copytree(RASA_DIR / "data", root / "rasa_project" / "data")
    (root / "requirements").mkdir()
    monkeypatch.setattr(train, "ROOT", root)
    before = train.fingerprint()
    (root / "kb" / "learned").mkdir(parents=True)
    (root / "kb" / "learned" / "en.yml").write_text("invoice:\n- bill please\n")
    assert train.fingerprint() != before


# --- assigning -----------------------------------------------------------------------------


def test_assigning_a_group_writes_the_training_file_and_the_history(
    session: Session, kb_dir: Path
) -> None:
    training = misunderstood.Training.load(kb_dir, LANGS, RASA_DIR)
    rows = [
        misunderstood.record(
            session, text=text, reason="thumbs_down", language=lang, customer_key=KEY
        )
        for text, lang in [
            ("is it possible to report issues with payment?", "en"),
            ("my payment went wrong, who do I tell", "en"),
            ("betaling mislukt, waar meld ik dat", "nl"),
        ]
    ]
    ids = [r.id for r in rows if r is not None]
    result = misunderstood.assign(
        session, ids=ids, target="payment_problem", actor="maria", training=training
    )
    assert len(result.added) == 3 and not result.skipped
    en = yaml.safe_load((kb_dir / "learned/en.yml").read_text(encoding="utf-8"))
    nl = yaml.safe_load((kb_dir / "learned/nl.yml").read_text(encoding="utf-8"))
    assert en == {
        "payment_problem": [
            "is it possible to report issues with payment?",
            "my payment went wrong, who do I tell",
        ]
    }
    assert nl == {"payment_problem": ["betaling mislukt, waar meld ik dat"]}
    assert not {m.id for m in misunderstood.open_messages(session)} & set(ids)
    events = session.scalars(
        select(MisunderstoodEvent).where(MisunderstoodEvent.message_id.in_(ids))
    ).all()
    assert {(e.actor, e.new_value) for e in events} == {("maria", "payment_problem")}
    assert len(events) == 3
    with pytest.raises(learned.LearnedError):
        misunderstood.assign(session, ids=ids, target="bogus", actor="maria", training=training)


# --- the dashboard page --------------------------------------------------------------------

PASSWORD = "misunderstood-test-password"


@pytest.fixture(scope="module")
def web_db(committing_db: str) -> str:
    """A migrated database of this module's own: the dashboard commits."""
    return committing_db


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_page_needs_login_and_csrf_and_assignments_name_who(web_db: str, kb_dir: Path) -> None:
    from earshot.web.app import create_app

    with session_scope(web_db) as s:
        s.query(MisunderstoodMessage).delete()
        row = misunderstood.record(
            s, text="where could I check when my item is going to arrive?",
            reason="thumbs_down", language="en", customer_key=KEY,
            parse_data=parse(("returns_refunds", 0.7), ("order_track", 0.2)),
            answered_topic="returns_refunds",
        )  # fmt: skip
        assert row is not None
        mid = row.id
        s.query(DashboardUser).filter_by(name="maria").delete()
        add_user(s, name="maria", role="triager", password=PASSWORD)  # a triager assigns
    settings = load_settings(
        database_url=web_db, admin_password=PASSWORD, earshot_secret="s" * 32,
        languages=["en", "nl"], knowledge_base=kb_dir,
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        r = client.get("/misunderstood", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        r = client.get("/login")
        client.post("/login", data={"csrf": _csrf(r.text), "user": "maria", "password": PASSWORD})
        page = client.get("/misunderstood")
        assert "where could I check when my item is going to arrive?" in page.text
        assert "answer voted 👎" in page.text and "returns refunds (70%)" in page.text
        assert '<option value="order_track">' in page.text
        assert '<option value="new_topic_needed">' in page.text
        forged = client.post(
            "/misunderstood/assign", data={"ids": str(mid), "target": "order_track"}
        )
        assert forged.status_code == 403
        done = client.post(
            "/misunderstood/assign",
            data={"csrf": _csrf(page.text), "ids": str(mid), "target": "order_track"},
        )
        assert "1 message assigned to order track" in done.text
        assert 'data-testid="message"' not in done.text  # the queue is empty now
        assert "<strong>maria</strong> assigned a message" in done.text
    en = yaml.safe_load((kb_dir / "learned/en.yml").read_text(encoding="utf-8"))
    assert en == {"order_track": ["where could I check when my item is going to arrive?"]}
