"""One linear classifier over intents *and* FAQ topics, blended with the ResponseSelector.

Rasa routes a message in two stages: an intent classifier decides "faq" against the
other intents, then the ResponseSelector picks the topic. With some 25 topics pooled
into one "faq" class of thousands of examples beside feedback intents of a few dozen,
Rasa's LogisticRegressionClassifier (which hard-codes ``class_weight="balanced"``)
gives each FAQ example a tiny weight, so ambiguous service questions ("my return never
arrived") leaked into the feedback intents. Here each topic is its own class
(``faq/order_place``), of a size comparable to the other intents; the probability of
"faq" is the sum of its topics'. The topic probabilities this yields are a second
opinion on the topic, averaged with the ResponseSelector's (linear n-gram model and
neural model err on different messages). Measured in reports/eval.md.

Place it after the ResponseSelector (it reads the selector's ranking; set the
selector's ``ranking_length: 0`` so every topic is ranked) and before the
FallbackClassifier (which reads the intent confidence written here).

The weights are kept column-major (``_column_major``): scikit-learn multiplies the
message's sparse row by ``coef_.T``, and scipy copied the whole transposed matrix
(classes x n-grams) on every message for it. The product is the same; NLU parsing went
from 102 to 116 messages/s (`make eval`).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any, cast

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)

RESPONSES_FILE = "responses.json"
WEIGHTS_FILE = "weights.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FlatIntentClassifier(LogisticRegressionClassifier):
    """Logistic regression over intents with one class per FAQ topic."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Rasa's logistic regression defaults plus the retrieval intent and blend weight."""
        return {
            **LogisticRegressionClassifier.get_default_config(),
            "retrieval_intent": "faq",
            # Share of this model in the topic decision; 0 leaves the selector's alone.
            # Without a ResponseSelector in the pipeline this model picks the topic alone.
            "topic_weight": 0.5,
            # When the top two topics are this close (in P(topic | faq)), the message goes
            # to the fallback, which offers both as buttons: a question back costs the
            # customer one tap, a confident wrong answer costs their trust. 0: off.
            "topic_margin": 0.0,
            "fallback_intent": "nlu_fallback",
            # None: every example counts the same (topics are already balanced classes).
            "class_weight": None,
            "C": 1.0,
        }

    def __init__(
        self,
        config: dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
    ) -> None:
        """Rasa's classifier, with our class weighting and regularisation."""
        super().__init__(config, name, model_storage, resource)
        self.clf.set_params(class_weight=self.config["class_weight"], C=self.config["C"])
        self.responses: dict[str, list[dict[str, Any]]] = {}

    def _label(self, message: Message) -> str | None:
        intent = message.get(INTENT)
        if intent == self.config["retrieval_intent"]:
            return message.get(INTENT_RESPONSE_KEY) or intent
        return intent

    def _create_training_matrix(self, training_data: TrainingData) -> tuple[csr_matrix, list[str]]:
        """Training pairs whose labels are intents, or ``faq/<topic>`` for FAQ examples."""
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        return self._create_X(examples), [str(self._label(e)) for e in examples]

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the classifier and keep the topic responses for re-ranked topics."""
        prefix = f"utter_{self.config['retrieval_intent']}/"
        self.responses = {k: v for k, v in training_data.responses.items() if k.startswith(prefix)}
        resource = super().train(training_data)
        self._column_major()
        return resource

    def _column_major(self) -> None:
        if hasattr(self.clf, "coef_"):
            self.clf.coef_ = np.asfortranarray(self.clf.coef_)

    def persist(self) -> None:
        """Save the weights as plain arrays, and the topic responses.

        Rasa saves its classifier with skops, whose import scans every loaded module for
        trusted types: 3-5 s in a process that has TensorFlow loaded, once when training
        and again when the server starts. Arrays need neither it nor pickle.
        """
        with self._model_storage.write_to(self._resource) as model_dir:
            if hasattr(self.clf, "coef_"):
                np.savez(
                    model_dir / WEIGHTS_FILE,
                    coef=self.clf.coef_,
                    intercept=self.clf.intercept_,
                    classes=np.asarray(self.clf.classes_, dtype=str),
                )
            (model_dir / RESPONSES_FILE).write_text(json.dumps(self.responses), encoding="utf-8")

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FlatIntentClassifier:
        """Load the weights and the topic responses (untrained: a fresh component)."""
        try:
            with model_storage.read_from(resource) as model_dir:
                weights, responses = model_dir / WEIGHTS_FILE, model_dir / RESPONSES_FILE
                saved = json.loads(responses.read_text("utf-8")) if responses.is_file() else {}
                if weights.is_file():
                    component = cls(config, execution_context.node_name, model_storage, resource)
                    with np.load(weights, allow_pickle=False) as arrays:
                        component.clf.coef_ = arrays["coef"]
                        component.clf.intercept_ = arrays["intercept"]
                        component.clf.classes_ = arrays["classes"]
                    component.clf.n_features_in_ = component.clf.coef_.shape[1]
                else:  # a model saved before the arrays, in Rasa's skops format
                    loaded = super().load(config, model_storage, resource, execution_context)
                    component = cast(FlatIntentClassifier, loaded)
        except ValueError:  # no such resource: untrained
            return cls.create(config, model_storage, resource, execution_context)
        component.responses = saved
        component._column_major()
        return component

    def process(self, messages: list[Message]) -> list[Message]:
        """Set the intent (topics summed into the retrieval intent) and re-rank topics."""
        if not messages or not hasattr(self.clf, "classes_"):  # untrained
            return messages
        retrieval = self.config["retrieval_intent"]
        prefix = f"{retrieval}/"
        probabilities = self.clf.predict_proba(self._create_X(messages))
        labels = [str(c) for c in self.clf.classes_]
        for message, row in zip(messages, probabilities, strict=False):
            intents: dict[str, float] = defaultdict(float)
            topics: dict[str, float] = {}
            for label, p in zip(labels, row, strict=False):
                if label.startswith(prefix):
                    topics[label] = float(p)
                    intents[retrieval] += float(p)
                else:
                    intents[label] += float(p)
            ranking = [
                {"name": k, "confidence": v}
                for k, v in sorted(intents.items(), key=lambda kv: -kv[1])
            ]
            message.set("intent", ranking[0], add_to_output=True)
            length = self.config["ranking_length"]
            message.set(
                "intent_ranking", ranking[:length] if length > 0 else ranking, add_to_output=True
            )
            self._rerank_topics(message, topics, intents[retrieval])
        return messages

    def _rerank_topics(self, message: Message, topics: dict[str, float], total: float) -> None:
        """Average the selector's topic confidences with this model's P(topic | faq).

        With no ResponseSelector in the pipeline, write the selector's output from this
        model's topics alone, in Rasa's format (``utter_faq`` reads it).
        """
        retrieval = self.config["retrieval_intent"]
        properties = message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}
        selector = properties.get(retrieval)
        if total <= 0:
            return
        if not selector:
            ranking = [
                {"id": None, "confidence": p / total, INTENT_RESPONSE_KEY: k}
                for k, p in sorted(topics.items(), key=lambda kv: -kv[1])
            ]
            selector = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {INTENT_RESPONSE_KEY: None},
                RESPONSE_SELECTOR_RANKING_KEY: ranking,
            }
            properties = {**properties, "all_retrieval_intents": [retrieval], retrieval: selector}
            message.set(RESPONSE_SELECTOR_PROPERTY_NAME, properties, add_to_output=True)
        else:
            weight = float(self.config["topic_weight"])
            if weight <= 0:
                return
            blended = {k: weight * p / total for k, p in topics.items()}
            for entry in selector[RESPONSE_SELECTOR_RANKING_KEY]:
                key = entry[INTENT_RESPONSE_KEY]
                blended[key] = blended.get(key, 0.0) + (1 - weight) * float(entry["confidence"])
            ids = {
                e[INTENT_RESPONSE_KEY]: e.get("id") for e in selector[RESPONSE_SELECTOR_RANKING_KEY]
            }
            ranking = [
                {"id": ids.get(k), "confidence": v, INTENT_RESPONSE_KEY: k}
                for k, v in sorted(blended.items(), key=lambda kv: -kv[1])
            ]
        top = ranking[0][INTENT_RESPONSE_KEY]
        prediction = selector[RESPONSE_SELECTOR_PREDICTION_KEY]
        if prediction.get(INTENT_RESPONSE_KEY) != top:
            utter = f"utter_{top}"
            prediction[RESPONSE_SELECTOR_UTTER_ACTION_KEY] = utter
            prediction[RESPONSE_SELECTOR_RESPONSES_KEY] = self.responses.get(utter, [])
            prediction[INTENT_RESPONSE_KEY] = top
        prediction["confidence"] = ranking[0]["confidence"]
        # The whole ranking was needed for the average; the tracker keeps only the top,
        # since every stored message is re-read on each turn.
        length = self.config["ranking_length"]
        selector[RESPONSE_SELECTOR_RANKING_KEY] = ranking[:length] if length > 0 else ranking
        self._ask_back_when_close(message, ranking)

    def _ask_back_when_close(self, message: Message, ranking: list[dict[str, Any]]) -> None:
        """Send a service question whose two best topics are close to the fallback."""
        margin = float(self.config["topic_margin"])
        intent = message.get(INTENT) or {}
        if margin <= 0 or len(ranking) < 2 or intent.get("name") != self.config["retrieval_intent"]:
            return
        if ranking[0]["confidence"] - ranking[1]["confidence"] >= margin:
            return
        fallback = {"name": self.config["fallback_intent"], "confidence": intent["confidence"]}
        message.set(INTENT, fallback, add_to_output=True)
        message.set(
            "intent_ranking", [fallback, *(message.get("intent_ranking") or [])], add_to_output=True
        )
