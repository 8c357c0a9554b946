"""Feedback core on SQLite and PostgreSQL: similar items, supporters, when we may ask,
campaigns and importing outside feedback."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from earshot.conversations import queries as conversations
from earshot.feedback import queries as feedback_queries
from earshot.feedback import service as core
from earshot.feedback import similar as similar_texts
from earshot.feedback.schemas import FeedbackIn, FeedbackType, Source
from earshot.outreach import campaigns
from earshot.settings import Campaign, load_settings
from earshot.storage.models import AskLog, CampaignSend, Customer, Feedback, Supporter, utcnow

CATALOGUE = load_settings().catalogue
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
WINTER = Campaign(
    id="winter",
    question={"en": "How is your thermostat doing?", "nl": "Hoe gaat het met je thermostaat?"},
    product="thermostat",
    starts=datetime(2026, 11, 1, tzinfo=timezone.utc),
    ends=datetime(2027, 2, 28, 23, 59, 59, tzinfo=timezone.utc),
)

# Pairs earshot.feedback.similar must keep apart: paraphrases of one wish or fault...
SAME = [
    ("please add a dark mode to the app", "the app should have a dark mode"),
    ("the doorbell keeps disconnecting from wifi", "my doorbell disconnects from the wifi a lot"),
    ("I'd love a sunrise alarm for the bulbs", "sunrise alarm feature for bulbs please"),
    ("let me group strips and bulbs into scenes", "grouping bulbs and strips into scenes"),
    ("The hub should show which bulbs are offline", "show offline bulbs in the hub"),
    ("a schedule per room on the thermostat", "I want a separate schedule for each room"),
    ("battery powered doorbell please", "make a doorbell that runs on batteries"),
    ("please support Homey", "Homey support would be great"),
    ("the strip flickers when dimmed", "my light strip is flickering when I dim it"),
    ("Let me rename scenes in the app", "please allow renaming my scenes"),
]
# ...and different wishes or faults about the same product.
DIFFERENT = [
    ("please add a dark mode to the app", "please add a widget to the app"),
    ("the doorbell keeps disconnecting", "the doorbell video lags a lot"),
    ("sunrise alarm for bulbs", "bulbs should sync with music"),
    ("the app crashes when I open it", "the app logs me out every day"),
    ("export my energy data from the app", "show energy statistics for the plug in the app"),
    ("add a vacation mode to the app", "add a dark mode to the app"),
    ("The hub should show which bulbs are offline", "the hub gets really hot"),
    ("please support Homey", "please support Google Home"),
    ("the strip flickers when dimmed", "the strip adhesive doesn't stick"),
    ("dark mode please", "a night mode for the lights would be great"),
]


def key() -> str:
    return uuid.uuid4().hex


def item(session: Session, text: str, **kw: object) -> Feedback:
    fields: dict[str, object] = {
        "customer_key": key(),
        "product": "app",
        "type": FeedbackType.idea,
        "description": text,
    }
    fields.update(kw)
    return feedback_queries.create_feedback(session, item=FeedbackIn(**fields), ref_prefix="LH")


# --------------------------------------------------------------------------- similarity


@pytest.mark.parametrize(("a", "b"), SAME)
def test_paraphrases_are_similar(a: str, b: str) -> None:
    ignore = core.product_words(CATALOGUE)
    assert similar_texts.score(a, b, ignore=ignore) >= similar_texts.DUPLICATE_THRESHOLD


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_wishes_are_not_similar(a: str, b: str) -> None:
    ignore = core.product_words(CATALOGUE)
    assert similar_texts.score(a, b, ignore=ignore) < similar_texts.DUPLICATE_THRESHOLD


def test_normalise_ignores_case_accents_and_punctuation() -> None:
    assert core.normalise("  Café: the APP crashes!!  ") == "cafe the app crashes"
    assert core.normalise("Don't") == core.normalise("dont")


def test_find_similar_only_open_items_of_the_same_product_and_others(session: Session) -> None:
    author = key()
    open_idea = item(session, "Please add a dark mode to the app", customer_key=author)
    item(session, "dark mode for the app", customer_key=key()).status = "done"  # closed
    item(session, "dark mode for the bulbs", product="bulb")
    item(session, "the app has no dark mode, terrible", type=FeedbackType.complaint)
    session.flush()
    found = core.find_similar(
        session, text="Dark mode for the app please!", product="app", catalogue=CATALOGUE
    )
    assert found is not None and found.ref == open_idea.ref
    assert found.description == "Please add a dark mode to the app"
    assert found.score >= similar_texts.DUPLICATE_THRESHOLD and found.supporters == 1

    # Nobody is asked whether they mean their own item.
    def similar(text: str, product: str, **kw: object) -> core.SimilarItem | None:
        return core.find_similar(
            session,
            text=text,
            product=product,
            catalogue=CATALOGUE,
            **kw,  # type: ignore[arg-type]
        )

    assert similar("dark mode please", "app", exclude_customer=author) is None
    assert similar("a widget for the app", "app") is None
    assert similar("dark mode", "hub") is None
    complaint = similar("dark mode", "app", types=[FeedbackType.complaint])
    assert complaint is not None and complaint.description.startswith("the app has no")


def test_supporters_count_each_customer_once_and_never_the_author(session: Session) -> None:
    author = key()
    idea = item(session, "a vacation mode", customer_key=author)
    fan = key()
    assert core.add_supporter(session, ref=idea.ref, customer_key=fan) is idea
    assert idea.supporters == 2
    core.add_supporter(session, ref=idea.ref, customer_key=fan)  # pressed twice
    core.add_supporter(session, ref=idea.ref, customer_key=author)  # the author
    assert idea.supporters == 2
    core.add_supporter(session, ref=idea.ref.lower(), customer_key=key())
    assert idea.supporters == 3
    rows = session.scalars(select(Supporter.customer_key).where(Supporter.feedback_id == idea.id))
    assert fan in set(rows) and author not in set(rows)
    assert core.add_supporter(session, ref="LH-NONE", customer_key=fan) is None


def test_items_of_customer_lists_own_and_supported_items(session: Session) -> None:
    me = key()
    mine = item(session, "my own idea", customer_key=me)
    theirs = item(session, "someone else's idea")
    item(session, "not mine at all")
    core.add_supporter(session, ref=theirs.ref, customer_key=me)
    listed = {i.ref: i for i in core.items_of_customer(session, customer_key=me)}
    assert set(listed) == {mine.ref, theirs.ref}
    assert not listed[mine.ref].supported and listed[theirs.ref].supported
    assert listed[mine.ref].status == "new" and listed[mine.ref].description == "my own idea"


def test_save_feedback_redacts_text_and_versions_consent(session: Session) -> None:
    row = core.save_feedback(
        session,
        item=FeedbackIn(
            customer_key=key(),
            description="Mail me at jan@example.org about the hub",
            benefit="call +31 6 12345678",
            consent=True,
        ),
        ref_prefix="LH",
        catalogue=CATALOGUE,
    )
    assert row.description == "Mail me at [email] about the hub"
    assert row.benefit == "call [phone]"
    assert row.consent and row.consent_version == core.CONSENT_VERSION
    assert row.consent_at is not None and row.sentiment is not None
    no = core.save_feedback(
        session, item=FeedbackIn(description="fine", consent=False), ref_prefix="LH"
    )
    assert not no.consent and no.consent_version is None and no.consent_at is None


# --------------------------------------------------------------------------- asking


def test_after_service_asks_once_per_interval(session: Session) -> None:
    k = key()
    conversations.touch_customer(session, user_key=k, channel="telegram", chat_id="1")
    assert core.may_ask_after_service(session, customer_key=k, interval_days=14, now=NOW)
    core.record_ask(session, customer_key=k, trigger="after_service", now=NOW)
    later = NOW + timedelta(days=13, hours=23)
    assert not core.may_ask_after_service(session, customer_key=k, interval_days=14, now=later)
    # The ask log alone also counts (e.g. a channel that never created a customers row).
    session.execute(update(Customer).where(Customer.user_key == k).values(last_asked_at=None))
    assert not core.may_ask_after_service(session, customer_key=k, interval_days=14, now=later)
    after = NOW + timedelta(days=14)
    assert core.may_ask_after_service(session, customer_key=k, interval_days=14, now=after)


def test_never_ask_during_handoff_after_a_thumbs_down_or_after_opt_out(session: Session) -> None:
    k = key()

    def may(now: datetime = NOW, **kw: str | bool | None) -> bool:
        return core.may_ask_after_service(
            session,
            customer_key=k,
            interval_days=14,
            now=now,
            **kw,  # type: ignore[arg-type]
        )

    assert may()
    assert not may(handoff_active=True)
    assert not may(last_vote="down")
    assert may(last_vote="up")
    core.opt_out(session, customer_key=k, channel="telegram")
    customer = conversations.get_customer(session, user_key=k)
    assert customer is not None and customer.do_not_ask
    assert not may(now=NOW + timedelta(days=400))
    assert not core.may_ask_campaign(session, customer_key=k)
    assert core.may_ask_campaign(session, customer_key=key())
    assert not core.may_ask_campaign(session, customer_key=key(), handoff_active=True)


def test_asks_are_closed_answered_declined_or_ignored(session: Session) -> None:
    k = key()
    first = core.record_ask(session, customer_key=k, trigger="after_service", product="hub")
    second = core.record_ask(session, customer_key=k, trigger="campaign", campaign_id="winter")
    assert first.outcome == "ignored"  # a new question means the old one went unanswered
    got = core.close_ask(session, customer_key=k, outcome="answered")
    assert got == core.OpenAsk("campaign", "winter", None)
    assert second.outcome == "answered" and second.answered_at is not None
    assert core.close_ask(session, customer_key=k, outcome="declined") is None  # none open
    core.record_ask(session, customer_key=k, trigger="after_service", now=NOW)
    assert (
        core.close_ask(session, customer_key=k, outcome="declined", now=NOW + timedelta(days=2))
        is None
    ), "an ask unanswered for a day is not answered by a later yes"
    old = session.scalars(select(AskLog).where(AskLog.customer_key == k)).all()
    assert [a.outcome for a in sorted(old, key=lambda a: a.id)] == ["ignored", "answered", "asked"]


def test_opt_out_declines_the_open_question(session: Session) -> None:
    k = key()
    ask = core.record_ask(session, customer_key=k, trigger="after_service")
    core.opt_out(session, customer_key=k)
    assert ask.outcome == "declined"


# --------------------------------------------------------------------------- campaigns


def test_campaign_window_and_question_language() -> None:
    assert campaigns.campaign_active(WINTER, NOW)
    assert not campaigns.campaign_active(WINTER, datetime(2026, 10, 31, tzinfo=timezone.utc))
    assert not campaigns.campaign_active(WINTER, datetime(2027, 3, 1, tzinfo=timezone.utc))
    assert campaigns.campaign_question(WINTER, "nl", "en").startswith("Hoe gaat")
    assert campaigns.campaign_question(WINTER, "de", "en").startswith("How is")
    assert campaigns.campaign_question(WINTER, None, "fr").startswith("How is")


def test_campaign_enqueue_is_idempotent(session: Session) -> None:
    keys = [key() for _ in range(200)]
    for i, k in enumerate(keys):
        conversations.touch_customer(
            session, user_key=k, channel="telegram", chat_id=str(10_000 + i)
        )
    opted_out, unreachable = key(), key()
    conversations.touch_customer(session, user_key=opted_out, channel="telegram", chat_id="1")
    feedback_queries.set_do_not_ask(session, customer_key=opted_out)
    conversations.touch_customer(session, user_key=unreachable, channel="web")
    session.flush()
    first = campaigns.enqueue_campaign(session, campaign=WINTER, now=NOW)
    second = campaigns.enqueue_campaign(session, campaign=WINTER, now=NOW)
    assert (first.added, first.total) == (200, 200)
    assert (second.added, second.total) == (0, 200)
    rows = session.scalars(select(CampaignSend).where(CampaignSend.campaign_id == "winter")).all()
    assert len(rows) == 200 and {r.customer_key for r in rows} == set(keys)
    assert {r.status for r in rows} == {"pending"} and all(r.sent_at is None for r in rows)
    # A customer who arrives later is queued by the next run, nobody else again.
    newcomer = key()
    conversations.touch_customer(session, user_key=newcomer, channel="telegram", chat_id="99")
    assert campaigns.enqueue_campaign(session, campaign=WINTER, now=NOW).added == 1
    with pytest.raises(campaigns.CampaignError):
        campaigns.enqueue_campaign(session, campaign=WINTER, now=NOW + timedelta(days=365))
    total = session.scalar(select(func.count()).select_from(CampaignSend))
    assert total == 201


def test_campaign_status_counts(session: Session) -> None:
    keys = [key() for _ in range(7)]
    for i, k in enumerate(keys):
        conversations.touch_customer(session, user_key=k, channel="telegram", chat_id=str(i))
    campaigns.enqueue_campaign(session, campaign=WINTER, now=NOW)
    sends = session.scalars(select(CampaignSend).order_by(CampaignSend.id)).all()
    for send, state in zip(sends, ["sent"] * 5 + ["sending", "pending"], strict=True):
        send.status = state
    for k, outcome in zip(
        keys[:5], ["answered", "answered", "declined", "asked", "asked"], strict=True
    ):
        core.record_ask(session, customer_key=k, trigger="campaign", campaign_id="winter", now=NOW)
        if outcome != "asked":
            core.close_ask(session, customer_key=k, outcome=outcome, now=NOW)
    # One of the open asks is two days old: ignored.
    session.execute(
        update(AskLog)
        .where(AskLog.customer_key == keys[4])
        .values(asked_at=NOW - timedelta(days=2))
    )
    core.record_ask(session, customer_key=keys[5], trigger="after_service", now=NOW)
    item(session, "warmer mornings", campaign_id="winter", source=Source.campaign)
    status = campaigns.campaign_status(session, campaign_id="winter", now=NOW)
    assert (status.queued, status.sent, status.sending, status.pending) == (7, 5, 1, 1)
    assert (status.asked, status.answered, status.declined) == (5, 2, 1)
    assert (status.waiting, status.ignored, status.items) == (1, 1, 1)
    empty = campaigns.campaign_status(session, campaign_id="nothing", now=NOW)
    assert (empty.queued, empty.asked, empty.items) == (0, 0, 0)


# --------------------------------------------------------------------------- import


def test_import_classifies_maps_products_and_skips_duplicates(
    session: Session, tmp_path: Path
) -> None:
    item(session, "The app crashes when I open it!", customer_key=None)
    path = tmp_path / "reviews.csv"
    path.write_text(
        "review,device\n"
        '"the app crashes when i open it",app\n'  # already stored (normalised)
        '"Please add a dark mode to the app",Lumen app\n'
        '"please add a DARK mode to the app!",\n'  # repeated in the file
        '"",bulb\n'
        '"my doorbell keeps disconnecting from the wifi",video doorbell\n'
        '"the thermostat is lovely",\n',
        encoding="utf-8",
    )
    result = core.import_csv(
        session,
        path=path,
        text_column="review",
        product_column="device",
        catalogue=CATALOGUE,
        ref_prefix="LH",
    )
    assert (result.imported, result.duplicates, result.empty) == (3, 2, 1)
    rows = session.scalars(
        select(Feedback).where(Feedback.source == "import").order_by(Feedback.id)
    ).all()
    assert [r.description for r in rows] == [
        "Please add a dark mode to the app",
        "my doorbell keeps disconnecting from the wifi",
        "the thermostat is lovely",
    ]
    assert [r.product for r in rows] == ["app", "doorbell", "thermostat"]
    assert [r.type for r in rows] == ["idea", "problem", "other"]
    assert all(r.channel == "import" and r.customer_key is None for r in rows)
    assert all(r.sentiment is not None and r.status == "new" and r.complete for r in rows)
    assert rows[2].sentiment is not None and rows[2].sentiment > 0
    again = core.import_csv(
        session, path=path, text_column="review", catalogue=CATALOGUE, ref_prefix="LH"
    )
    assert (again.imported, again.duplicates) == (0, 5)


def test_chat_suggestion_and_import_use_the_same_model(session: Session, tmp_path: Path) -> None:
    """What `earshot import` stores is what the chat suggests, whatever intent Rasa saw;
    the intent only tells a complaint or praise apart within the classifier's call."""
    texts = ["Its so slow man", "pls let me export my data as a spreadsheet", "cool app"]
    path = tmp_path / "reviews.csv"
    path.write_text("text\n" + "\n".join(texts) + "\n", encoding="utf-8")
    core.import_csv(session, path=path, text_column="text", catalogue=CATALOGUE, ref_prefix="LH")
    stored = dict(
        session.execute(
            select(Feedback.description, Feedback.type).where(Feedback.source == "import")
        )
        .tuples()
        .all()
    )
    assert [stored[t] for t in texts] == ["problem", "idea", "other"]
    for text in texts:
        detected = core.detect(text, CATALOGUE)
        # A misread intent does not move the suggestion off the classifier's call.
        assert core.suggest_type(detected, "feedback_idea").value == stored[text]
        assert core.suggest_type(detected, "feedback_problem").value == stored[text]
        assert core.suggest_type(detected, None).value == stored[text]
    slow, wish, cool = (core.detect(t, CATALOGUE) for t in texts)
    assert core.suggest_type(slow, "feedback_complaint") == FeedbackType.complaint
    assert core.suggest_type(wish, "feedback_complaint") == FeedbackType.idea
    assert core.suggest_type(cool, "feedback_praise") == FeedbackType.praise
    assert core.suggest_type(slow, "feedback_praise") == FeedbackType.problem


def test_import_names_a_missing_column(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("text\nhello\n", encoding="utf-8")
    with pytest.raises(core.ImportFailed, match="review"):
        core.import_csv(
            session, path=path, text_column="review", catalogue=CATALOGUE, ref_prefix="LH"
        )


def test_product_from_label() -> None:
    assert core.product_from_label("Lumen Doorbell", CATALOGUE) == "doorbell"
    assert core.product_from_label(" LED strip ", CATALOGUE) == "strip"
    assert core.product_from_label("thermostat", CATALOGUE) == "thermostat"
    assert core.product_from_label("toaster", CATALOGUE) is None


def test_now_is_utc_aware() -> None:
    assert utcnow().tzinfo is not None


def test_product_in_text_finds_names_and_plurals() -> None:
    assert core.product_in_text("my two light bulbs flicker", CATALOGUE) == "bulb"
    assert core.product_in_text("The Lumen Hub gets hot", CATALOGUE) == "hub"
    assert core.product_in_text("the video doorbell", CATALOGUE) == "doorbell"
    assert core.product_in_text("my toaster", CATALOGUE) is None


def test_feedback_survives_a_broken_classifier(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import earshot.classify

    def broken(*_: object, **__: object) -> None:
        raise FileNotFoundError("no model")

    monkeypatch.setattr(earshot.classify, "classify", broken)
    found = core.detect_safely("the plug clicks loudly", CATALOGUE)
    assert found == core.Detected(FeedbackType.other, None, "plug")
    row = core.save_feedback(
        session,
        item=FeedbackIn(description="the plug clicks"),
        ref_prefix="LH",
        catalogue=CATALOGUE,
    )
    assert row.sentiment is None and row.description == "the plug clicks"


# --------------------------------------------------------------------------- CLI


def run_cli(*argv: str) -> int:
    import argparse

    from earshot.cli.feedback import register

    parser = argparse.ArgumentParser(prog="earshot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.fn(args))


def test_cli_campaign_send_status_and_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from earshot.settings import ROOT
    from earshot.storage.db import migrate, session_scope

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate(url)
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config["campaigns"] = [
        {"id": "now", "product": "hub", "question": {"en": "How is your hub?"}},
        {"id": "over", "question": {"en": "Old"}, "ends": "2020-01-01T00:00:00Z"},
    ]
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("EARSHOT_CONFIG", str(tmp_path / "config.yml"))
    monkeypatch.setenv("DATABASE_URL", url)
    with session_scope(url) as session:
        for i in range(3):
            conversations.touch_customer(
                session, user_key=f"k{i}", channel="telegram", chat_id=str(i)
            )

    assert run_cli("campaign", "send", "now") == 0
    assert "queued 3 new customer(s), 3 in total" in capsys.readouterr().out
    assert run_cli("campaign", "send", "now") == 0
    assert "queued 0 new customer(s), 3 in total" in capsys.readouterr().out
    assert run_cli("campaign", "send", "over") == 1
    assert "not running" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli("campaign", "send", "nope")
    assert "no campaign 'nope'" in capsys.readouterr().err

    with session_scope(url) as session:
        core.record_ask(session, customer_key="k0", trigger="campaign", campaign_id="now")
        core.close_ask(session, customer_key="k0", outcome="answered")
    assert run_cli("campaign", "status", "now") == 0
    out = capsys.readouterr().out
    assert "campaign now (running)" in out
    assert re.search(r"queued\s+3\s+\(pending 3", out) and re.search(r"answered\s+1\b", out)
    assert "whatsapp" not in out  # no WhatsApp sends: no line about them
    from earshot.conversations import whatsapp as wa_queries

    with session_scope(url) as session:
        wa_queries.record_send(
            session, message_id="w1", customer_key="k1", kind="campaign", ref="now"
        )
        wa_queries.record_send(
            session, message_id="w2", customer_key="k2", kind="campaign", ref="now"
        )
        wa_queries.record_status(session, message_id="w1", status="read")
        wa_queries.record_status(session, message_id="w2", status="failed", error_code=131026)
    assert run_cli("campaign", "status", "now") == 0
    assert re.search(
        r"whatsapp\s+2\s+\(accepted 0, sent 0, delivered 0, read 1, failed 1\)",
        capsys.readouterr().out,
    )

    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("text\nThe hub gets really hot\nthe hub gets really hot!\n\n", "utf-8")
    assert run_cli("import", str(csv_path), "--text-column", "text") == 0
    out = capsys.readouterr().out
    assert "imported 1 item(s)" in out and "skipped 1 duplicate(s)" in out
    assert run_cli("import", str(csv_path), "--text-column", "body") == 1
    assert "no column 'body'" in capsys.readouterr().err
