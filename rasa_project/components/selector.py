"""Rasa's ResponseSelector without the token-level input layer its answers never read.

With no transformer layers (the selector's default), each position of a message is
processed on its own, and the answer is read off the last position alone: the sentence
features. The token positions still went through a sparse input layer as wide as the
whole vocabulary (some 15,600 words and character n-grams x 256 units), which was
computed, trained with Adam and saved on every step for nothing.

This selector hands Rasa an empty one-column placeholder for each token instead of the
token's n-gram counts. Every shape the sentence path sees is unchanged (the number of
positions included, which sets the dropout masks), so it trains the same model: the
test checks that its answers and confidences equal the stock selector's. Only the
useless layer shrinks (README, Performance: the time it saves).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.shared.nlu.constants import FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.utils.tensorflow.constants import MASKED_LM, NUM_TRANSFORMER_LAYERS
from rasa.utils.tensorflow.model_data import RasaModelData

PLACEHOLDER_ORIGIN = "SentenceResponseSelector.placeholder"


def _is_token_counts(feature: Features) -> bool:
    return bool(
        feature.attribute == TEXT and feature.type == FEATURE_TYPE_SEQUENCE and feature.is_sparse()
    )


def without_token_counts(message: Message) -> Message:
    """A view of `message` whose sparse token features are one empty column per token."""
    tokens = [f for f in message.features if _is_token_counts(f)]
    if not tokens:
        return message
    rows = tokens[0].features.shape[0]
    features = [f for f in message.features if not _is_token_counts(f)]
    placeholder = scipy.sparse.coo_matrix((rows, 1), dtype=np.float32)
    features.append(Features(placeholder, FEATURE_TYPE_SEQUENCE, TEXT, PLACEHOLDER_ORIGIN))
    return Message(data=message.data, features=features)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceResponseSelector(ResponseSelector):
    """ResponseSelector fed sentence-level n-gram counts only (same answers, less work)."""

    def _create_model_data(
        self,
        training_data: list[Message],
        label_id_dict: dict[str, int] | None = None,
        label_attribute: str | None = None,
        training: bool = True,
    ) -> RasaModelData:
        """Rasa's model data, built from messages without token-level n-gram counts."""
        return super()._create_model_data(
            [without_token_counts(m) for m in training_data],
            label_id_dict,
            label_attribute,
            training,
        )

    def _check_config_parameters(self) -> None:
        """Rasa's checks, plus: nothing may read the token positions this leaves empty."""
        super()._check_config_parameters()
        if self.component_config[NUM_TRANSFORMER_LAYERS] or self.component_config[MASKED_LM]:
            raise ValueError(
                "SentenceResponseSelector feeds no token features: it needs "
                f"{NUM_TRANSFORMER_LAYERS}: 0 and {MASKED_LM}: false"
            )
