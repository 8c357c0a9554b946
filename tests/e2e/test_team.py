"""Product teams through Telegram: /stats, /export, and closing the loop with customers."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

from earshot.settings import ROOT
from testkit.stack import TEAM_USER_ID, Stack
from tests.e2e.helpers import Customer, feedback_rows, finish, texts


def test_stats_and_export_for_the_team_only(stack: Stack, user_id: int) -> None:
    outsider = Customer(stack, user_id)
    for command in ("/stats", "/export csv"):
        assert texts(outsider.say(command)) == "Sorry, that's not available."
    team = Customer(stack, TEAM_USER_ID)
    stats = texts(team.say("/stats"))
    assert "7 days" in stats or "7d" in stats, stats
    team.fake.send_text(TEAM_USER_ID, "/export csv")
    doc = stack.fake.wait_for(
        lambda: [u for u in stack.fake.documents if str(u.chat_id) == str(TEAM_USER_ID)] or None,
        timeout=30,
    )[-1]
    assert (doc.filename or "").endswith(".csv")
    rows = list(csv.reader(io.StringIO(doc.content.decode("utf-8-sig"))))
    assert rows[0][0] == "ref" and len(rows) >= 1


def test_customers_are_told_once_when_their_idea_is_planned(stack: Stack, user_id: int) -> None:
    me = Customer(stack, user_id)
    me.say("/feedback")
    me.press("Lumen Plug")
    me.press("Idea")
    me.say("Let the plug switch off when electricity is expensive")
    me.press("Skip")
    me.press("Important")
    ref = finish(me, consent="Yes")
    assert feedback_rows(stack, ref=ref)[0].consent
    cmd = [sys.executable, "-m", "earshot", "triage", "set-status", ref, "planned", "--note", "Q3"]
    out = subprocess.run(cmd, env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    told = me._new(lambda m: any(ref in (x.text or "") for x in m), 60)
    assert "planned" in texts(told)
    again = subprocess.run(cmd, env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode in (0, 1)
    assert not [m for m in me.settle(3) if ref in (m.text or "")], "told only once per change"
