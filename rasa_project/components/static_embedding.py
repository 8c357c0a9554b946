"""Dense sentence features from the pretrained static embedding shipped in `wordllama`.

The n-gram featurizers only know words the training data used; customers write "parcel",
"arrive", "couch", "registration". This featurizer adds the mean of WordLlama's
pretrained sub-word vectors (earshot/embeddings.py: read from the installed wheel,
nothing downloaded) as the message's sentence features, which the flat classifier
stacks beside the sparse n-gram counts. Sequence features (one vector per token) are
added too, so any dense-aware component after it sees consistent shapes.

``scale`` sets the vector's length relative to the count features: the classifier's L2
penalty treats every column alike, so a unit vector among raw counts would be almost
ignored. Measured in reports/eval.md (scripts/eval_independent.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from earshot.embeddings import embedder


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class StaticEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """WordLlama's mean-pooled token vectors as dense features of the message text."""

    @classmethod
    def required_components(cls) -> list[type]:
        """Tokens come from a tokenizer earlier in the pipeline."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Unit-length vectors times ``scale``."""
        return {**DenseFeaturizer.get_default_config(), "scale": 1.0}

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """``scale`` must be positive."""
        if float(config.get("scale", 1.0)) <= 0:
            raise ValueError("StaticEmbeddingFeaturizer: scale must be positive")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> StaticEmbeddingFeaturizer:
        """A featurizer with no trained state."""
        return cls(config, execution_context.node_name)

    def __init__(self, config: dict[str, Any], name: str) -> None:
        """Keep the scale; the embedding itself is loaded once per process on first use."""
        super().__init__(name, config)
        self.scale = float(config["scale"])

    def _featurize(self, messages: list[Message]) -> None:
        todo = [m for m in messages if m.get(TEXT)]
        if not todo:
            return
        model = embedder()
        sentences = model.embed([str(m.get(TEXT)) for m in todo], normalise=True) * self.scale
        # Every message's tokens in one batch: one tokenizer call instead of one per message.
        words = [
            [t.text for t in m.get(TOKENS_NAMES[TEXT]) or []] or [str(m.get(TEXT))] for m in todo
        ]
        vectors = model.embed([w for ws in words for w in ws], normalise=True) * self.scale
        start = 0
        for message, sentence, ws in zip(todo, sentences, words, strict=True):
            self.add_features_to_message(
                sequence=vectors[start : start + len(ws)],
                sentence=sentence[np.newaxis, :],
                attribute=TEXT,
                message=message,
            )
            start += len(ws)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurize every training example's text."""
        self._featurize(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurize incoming messages."""
        self._featurize(messages)
        return messages
