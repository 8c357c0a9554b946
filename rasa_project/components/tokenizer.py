"""Rasa's whitespace tokenizer, without featurising answer texts nothing reads.

Rasa copies each FAQ answer onto every training question of its topic (the message's
``response`` attribute), and every tokenizer and featurizer then processes the answer
again for each question: some 4,000 copies of 50 long texts, char n-grams and regexes
included. The ResponseSelector learns on response *keys* (``use_text_as_label`` is
false), and nothing else in the pipeline reads the answer text, so this tokenizer drops
it from the training examples first. Measured: the featurizers' share of a full
training fell from ~4 min to ~45 s (reports/bench.md, training). Replies still come from
the domain's responses, which are untouched.

It also leaves out the labels that replace personal details before a message reaches
Rasa (`[email]`, `[phone]`, `[iban]`, `[card]`: earshot.privacy.redaction.redact). As typed, an
address or number was a token the model had never seen; as a label it became the word
"email" or "card", which pulled questions towards the newsletter or payment topics.
Without them the model reads the sentence as it read it before redaction.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import RESPONSE
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

# The redaction labels' words; the channel front ends write them in square brackets.
REDACTION_LABELS = frozenset({"email", "phone", "iban", "card"})


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class QuestionTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer that leaves answer texts out of the training examples and
    redaction labels out of the tokens."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Drop the copied answer text, then tokenize as Rasa does."""
        for example in training_data.training_examples:
            example.data.pop(RESPONSE, None)
        return super().process_training_data(training_data)

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        """Rasa's tokens minus redaction labels (kept when nothing else is left)."""
        tokens = super().tokenize(message, attribute)
        text = message.get(attribute) or ""

        def is_label(t: Token) -> bool:
            return (
                t.text.lower() in REDACTION_LABELS
                and text[t.start - 1 : t.start] == "["
                and text[t.end : t.end + 1] == "]"
            )

        kept = [t for t in tokens if not is_label(t)]
        return kept or tokens
