"""The conversations simulated customers hold: realistic, deterministic and cheap.

A step is something a customer types (`say`) or a button they press (`press`, by its
label). `cls` names the kind of turn: turns of one kind always get the same number of
bot messages, which the Telegram driver learns once per kind (see drivers.CountBook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["say", "press"]


@dataclass(frozen=True)
class Step:
    kind: Kind
    text: str
    cls: str


# FAQ questions with a product in them (so the feedback ask names the product).
SERVICE_QUESTIONS = (
    "How do I set up my Lumen Hub?",
    "is there a new firmware for the hub",
    "how do i connect my bulb to the app",
    "My bulb is offline",
    "the app says my plug is unreachable",
)

COMPLAINTS = (
    "The plug clicks loudly every time it switches and wakes up the baby",
    "The app logs me out every morning and I have to type my password again",
    "Pairing the plug took me over an hour because the light never blinked",
    "The plug's schedule ran an hour late after the clocks changed",
    "My order arrived with the plug's box crushed and the manual missing",
    "Support told me to reset the plug three times before reading my message",
    "The plug forgets the energy history whenever the power goes out",
)


def standard(customer: int) -> list[Step]:
    """A service question and its answer, 👍, then feedback through the whole form."""
    question = SERVICE_QUESTIONS[customer % len(SERVICE_QUESTIONS)]
    complaint = COMPLAINTS[customer % len(COMPLAINTS)]
    return [
        Step("say", question, f"question:{customer % len(SERVICE_QUESTIONS)}"),
        Step("press", "👍 Yes", "vote-first"),
        Step("press", "Not now", "not-now"),
        Step("say", "/feedback", "feedback"),
        Step("press", "Lumen Plug", "product"),
        Step("press", "Complaint", "type"),
        Step("say", f"{complaint} (customer {customer})", "description"),
        Step("press", "Skip", "should-have"),  # what should have happened?
        Step("press", "Important", "importance"),
        Step("press", "No", "consent"),
        Step("press", "Confirm", "confirm"),
        Step("say", "thanks", "thanks-after"),
    ]


# One example question per FAQ topic, 3 phrasings each (rotated per pass).
TOPIC_QUESTIONS = (
    ("How do I create an account?", "i want to make an account", "how to sign up"),
    ("How do I delete my account?", "I want to delete my Lumen account", "close my account"),
    ("How do I change my email address?", "i want to update my phone number",
     "change my name on my account"),
    ("I forgot my password", "How do I reset my password?", "can't log in, forgot password"),
    ("I can't register", "I never got the verification email", "registration doesn't work"),
    ("How can I contact customer service?", "what is your phone number",
     "What are your opening hours?"),
    ("What are the delivery options?", "how much is shipping", "Do you offer free shipping?"),
    ("How long does delivery take?", "when will my order arrive if I order today",
     "How fast do you ship?"),
    ("How do I change my delivery address?", "I entered the wrong address",
     "can i ship to a different address than my billing address"),
    ("How do I unsubscribe from the newsletter?", "I want to subscribe to your newsletter",
     "stop sending me emails"),
    ("How do I place an order?", "how can i buy a lumen bulb", "I want to order a thermostat"),
    ("How do I cancel my order?", "I want to cancel my order", "cancel order LH-204518"),
    ("How do I change my order?", "I want to add something to my order",
     "can i change the colour of the strip i ordered"),
    ("Where is my order?", "my parcel never arrived", "How can I track my package?"),
    ("What payment methods do you accept?", "can i pay with ideal", "Do you accept credit cards?"),
    ("My payment failed", "I was charged twice", "the ideal payment didn't go through"),
    ("Where can I find my invoice?", "I need an invoice for my order",
     "can you send me the invoice again"),
    ("What data do you store about me?", "privacy", "Do you save this chat?"),
    ("How do I set up my Lumen Hub?", "how do i connect my bulb to the app",
     "I just bought a smart plug, how do I install it?"),
    ("My bulb is offline", "the app says my plug is unreachable",
     "How do I fix a device that shows offline?"),
    ("How do I update the firmware?", "is there a new firmware for the hub",
     "my bulb is stuck updating"),
    ("Which phones does the Lumen app work on?", "does the app work with android",
     "Is the app available for iPhone?"),
    ("How do I return a product?", "I want to return my order", "what is your return policy"),
    ("Where is my refund?", "When will I get my money back?",
     "i returned my order 2 weeks ago and still no refund"),
    ("What warranty do I get?", "how long is the warranty on the thermostat",
     "my bulb broke after 8 months, is that covered?"),
)  # fmt: skip

THANKS = ("thanks", "thank you", "great, thanks a lot", "ok thanks", "thanks for the help")


def long(turns: int = 300) -> list[Step]:
    """One customer's long conversation: questions, each followed by thanks or a vote.

    It starts and ends the same way (a question, then thanks), so turns 1-10 and
    291-300 cost alike and only the length of the conversation differs. The first
    thanks brings the one feedback question of the interval, which they decline. In
    between, the first answer on each topic asks "did that help?" and they vote (every
    fifth time 👎); later questions revisit the 25 topics in other words.
    """
    steps: list[Step] = []
    cycle = 0
    while len(steps) < turns:
        topic = cycle % len(TOPIC_QUESTIONS)
        phrasing = (cycle // len(TOPIC_QUESTIONS)) % 3
        first_time = cycle < len(TOPIC_QUESTIONS)
        steps.append(
            Step("say", TOPIC_QUESTIONS[topic][phrasing], "q-new" if first_time else "q-seen")
        )
        if cycle == 0:
            steps.append(Step("say", THANKS[0], "thanks-first"))
            steps.append(Step("press", "Not now", "not-now"))
        elif first_time and cycle >= 5:
            vote = "👎 No" if topic % 5 == 4 else "👍 Yes"
            steps.append(Step("press", vote, "vote-down" if vote == "👎 No" else "vote-up"))
        else:
            steps.append(Step("say", THANKS[cycle % len(THANKS)], "thanks"))
        cycle += 1
    return steps[:turns]
