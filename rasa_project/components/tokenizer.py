"""Rasa's whitespace tokenizer, without featurising answer texts nothing reads.

Rasa copies each FAQ answer onto every training question of its topic (the message's
``response`` attribute), and every tokenizer and featurizer then processes the answer
again for each question: some 4,000 copies of 50 long texts, char n-grams and regexes
included. The ResponseSelector learns on response *keys* (``use_text_as_label`` is
false), and nothing else in the pipeline reads the answer text, so this tokenizer drops
it from the training examples first. Measured: the featurizers' share of a full
training fell from ~4 min to ~45 s (reports/bench.md, training). Replies still come from
the domain's responses, which are untouched.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import RESPONSE
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class QuestionTokenizer(WhitespaceTokenizer):
    """WhitespaceTokenizer that leaves answer texts out of the training examples."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Drop the copied answer text, then tokenize as Rasa does."""
        for example in training_data.training_examples:
            example.data.pop(RESPONSE, None)
        return super().process_training_data(training_data)
