"""Texts the adapters show outside Rasa's responses (bot notices, button titles, labels),
per language. Company-specific texts never live here: they are in kb/ and the domain.

    text("unavailable", "nl")        # Dutch, falling back to English for a missing key
    labels("type", "nl")["idea"]     # "Idee"
"""

from __future__ import annotations

from collections.abc import Mapping

FALLBACK = "en"
# How each language names itself, for language pickers and buttons.
LANGUAGE_NAMES = {"en": "English", "nl": "Nederlands", "de": "Deutsch", "fr": "Français"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "unavailable": "I can't answer right now, sorry. I've kept your message and will reply "
        "as soon as I can.",
        "expired": "That button has expired. Please type your message instead.",
        "private_only": "I only chat in private. Please message me directly.",
        "unknown_command": "I don't know that command. /help lists what I can do.",
        "error": "Sorry, something went wrong on my side. Please try again.",
        "delete_choose": "What would you like me to delete?\n\n"
        "• <b>My personal data</b>: your contact details, our conversations and everything "
        "that links you to your feedback. Your ideas stay, anonymously.\n"
        "• <b>Everything</b>: the above and your feedback too.",
        "delete_personal_button": "Delete my personal data",
        "delete_all_button": "Delete everything, my feedback too",
        "delete_yes_button": "Yes, delete",
        "cancel_button": "Cancel",
        "delete_confirm_personal": "Delete your personal data? This cannot be undone.",
        "delete_confirm_all": "Delete everything, your feedback too? This cannot be undone.",
        "deleted_personal": "Done: I've deleted your personal data. Your feedback stays, "
        "without anything that links it to you.",
        "deleted_all": "Done: I've deleted everything about you, including your feedback.",
        "delete_cancelled": "OK, I haven't deleted anything.",
        "edited": "I can't pick up edited messages. Please send the corrected text as a new "
        "message.",
        "handoff_reach_us": "This chat can't receive an answer once you have left it, so to "
        "be sure you hear from us, you can also reach our customer service directly:",
        "handoff_failed": "Sorry, I couldn't reach our support team just now, so nobody has "
        "seen your request yet. You can reach our customer service directly:",
        "something_else": "Something else",
        "no_product": "Not about a product",
        "summary_product": "Product",
        "summary_kind": "Kind",
        "summary_words": "In your words",
        "summary_should_have": "What should have happened",
        "summary_would_let": "What it would let you do",
        "summary_frequency": "How often",
        "summary_photos": "Photos",
        "summary_importance": "Importance",
        "summary_contact": "We may contact you about it",
        "yes": "Yes",
        "no": "No",
        "you_support": "you support",
        "you_said": "you said",
        "web_unavailable": "I can't answer right now, sorry. Please try again in a minute.",
        "too_fast": "You're sending messages very quickly. Please wait a moment.",
        "web_title": "Chat with us",
        "web_tagline": "Ask a question or tell us what you think",
        "web_language": "Language",
        "web_placeholder": "Type a message…",
        "web_send": "Send",
        "web_noscript": "The chat needs JavaScript.",
        "web_privacy": "We store what you write here to answer you and improve our products; "
        "type /privacy to learn more.",
    },
    "nl": {
        "unavailable": "Ik kan je nu even niet antwoorden, sorry. Ik heb je bericht bewaard en "
        "reageer zo snel mogelijk.",
        "expired": "Die knop werkt niet meer. Typ je bericht liever even.",
        "private_only": "Ik chat alleen één op één. Stuur me een privébericht.",
        "unknown_command": "Dat commando ken ik niet. Met /help zie je wat ik kan.",
        "error": "Sorry, er ging bij mij iets mis. Probeer het nog eens.",
        "delete_choose": "Wat wil je dat ik verwijder?\n\n"
        "• <b>Mijn persoonsgegevens</b>: je contactgegevens, onze gesprekken en alles wat jou "
        "aan je feedback koppelt. Je ideeën blijven bewaard, anoniem.\n"
        "• <b>Alles</b>: het bovenstaande én je feedback.",
        "delete_personal_button": "Verwijder mijn persoonsgegevens",
        "delete_all_button": "Verwijder alles, ook mijn feedback",
        "delete_yes_button": "Ja, verwijderen",
        "cancel_button": "Annuleren",
        "delete_confirm_personal": "Je persoonsgegevens verwijderen? Dit kun je niet terugdraaien.",
        "delete_confirm_all": "Alles verwijderen, ook je feedback? Dit kun je niet terugdraaien.",
        "deleted_personal": "Klaar: ik heb je persoonsgegevens verwijderd. Je feedback blijft, "
        "zonder iets wat naar jou verwijst.",
        "deleted_all": "Klaar: ik heb alles over jou verwijderd, ook je feedback.",
        "delete_cancelled": "Oké, ik heb niets verwijderd.",
        "edited": "Aangepaste berichten kan ik niet verwerken. Stuur de verbeterde tekst als "
        "nieuw bericht.",
        "handoff_reach_us": "Deze chat kan geen antwoord ontvangen als je hem hebt verlaten. "
        "Wil je zeker weten dat je van ons hoort, neem dan ook rechtstreeks contact op met "
        "onze klantenservice:",
        "handoff_failed": "Sorry, ik kon onze klantenservice nu niet bereiken, dus niemand heeft "
        "je verzoek nog gezien. Je bereikt onze klantenservice rechtstreeks:",
        "something_else": "Iets anders",
        "no_product": "Niet over een product",
        "summary_product": "Product",
        "summary_kind": "Soort",
        "summary_words": "In je eigen woorden",
        "summary_should_have": "Wat er had moeten gebeuren",
        "summary_would_let": "Wat je er dan mee kunt",
        "summary_frequency": "Hoe vaak",
        "summary_photos": "Foto's",
        "summary_importance": "Belang",
        "summary_contact": "We mogen contact met je opnemen",
        "yes": "Ja",
        "no": "Nee",
        "you_support": "je steunt",
        "you_said": "je zei",
        "web_unavailable": "Ik kan je nu even niet antwoorden, sorry. Probeer het over een "
        "minuutje nog eens.",
        "too_fast": "Je stuurt heel snel berichten achter elkaar. Wacht even.",
        "web_title": "Chat met ons",
        "web_tagline": "Stel een vraag of vertel ons wat je ervan vindt",
        "web_language": "Taal",
        "web_placeholder": "Typ een bericht…",
        "web_send": "Versturen",
        "web_noscript": "Voor de chat is JavaScript nodig.",
        "web_privacy": "We bewaren wat je hier schrijft om je te antwoorden en onze producten "
        "te verbeteren; typ /privacy voor meer informatie.",
    },
}

LABELS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "type": {
            "problem": "Problem",
            "idea": "Idea",
            "complaint": "Complaint",
            "praise": "Praise",
            "other": "Other",
        },
        "type_with_article": {
            "problem": "a problem",
            "idea": "an idea",
            "complaint": "a complaint",
            "praise": "praise",
            "other": "something else",
        },
        "frequency": {
            "always": "Always",
            "daily": "Daily",
            "weekly": "Weekly",
            "rarely": "Rarely",
            "once": "Once",
        },
        "importance": {
            "nice_to_have": "Nice to have",
            "important": "Important",
            "blocking": "Blocking me",
        },
        "status": {
            "new": "received",
            "under_review": "being reviewed",
            "planned": "planned",
            "in_progress": "in progress",
            "done": "done",
            "declined": "not taken forward",
            "duplicate": "merged with a similar item",
        },
        "command": {
            "start": "Start over",
            "help": "What I can do",
            "feedback": "Share an idea or a problem",
            "myfeedback": "The feedback you sent and its status",
            "privacy": "What I store and why",
            "deletemydata": "Delete what I store about you",
            "stop": "Stop asking me for feedback",
            "language": "Change the language",
        },
    },
    "nl": {
        "type": {
            "problem": "Probleem",
            "idea": "Idee",
            "complaint": "Klacht",
            "praise": "Compliment",
            "other": "Iets anders",
        },
        "type_with_article": {
            "problem": "een probleem",
            "idea": "een idee",
            "complaint": "een klacht",
            "praise": "een compliment",
            "other": "iets anders",
        },
        "frequency": {
            "always": "Altijd",
            "daily": "Dagelijks",
            "weekly": "Wekelijks",
            "rarely": "Zelden",
            "once": "Eén keer",
        },
        "importance": {
            "nice_to_have": "Leuk om te hebben",
            "important": "Belangrijk",
            "blocking": "Ik loop erop vast",
        },
        "status": {
            "new": "ontvangen",
            "under_review": "wordt bekeken",
            "planned": "ingepland",
            "in_progress": "in behandeling",
            "done": "klaar",
            "declined": "niet opgepakt",
            "duplicate": "samengevoegd met een vergelijkbaar idee",
        },
        "command": {
            "start": "Opnieuw beginnen",
            "help": "Wat ik kan",
            "feedback": "Een idee of probleem delen",
            "myfeedback": "Je feedback en de status ervan",
            "privacy": "Wat ik bewaar en waarom",
            "deletemydata": "Verwijder wat ik over je bewaar",
            "stop": "Stop met vragen om feedback",
            "language": "Taal wijzigen",
        },
    },
}


def text(key: str, language: str | None) -> str:
    """The text ``key`` in ``language``, else in English (every key exists in English)."""
    return TEXTS.get(language or FALLBACK, {}).get(key) or TEXTS[FALLBACK][key]


def labels(group: str, language: str | None) -> Mapping[str, str]:
    """A label table (type, frequency, importance, status, command) in ``language``."""
    return LABELS.get(language or FALLBACK, {}).get(group) or LABELS[FALLBACK][group]
