"""Train Rasa's ResponseSelector and our SentenceResponseSelector on the same featurised
messages, save and load ours, and print what both predict as JSON.
Runs in the Rasa venv: `python selector_check.py TMPDIR`."""

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from components.selector import SentenceResponseSelector
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.selectors.response_selector import ResponseSelector
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.common import override_defaults

TOPICS = {
    "faq/order_track": ["where is my parcel", "track my order", "has my package shipped yet"],
    "faq/refund_status": ["when do I get my money back", "refund still pending", "refund status"],
    "faq/warranty": ["is the lamp under warranty", "warranty claim for a broken bulb"],
}
QUESTIONS = ["where is my order", "my refund has not arrived", "broken lamp warranty", "hello"]
# The pipeline's selector settings, smaller layers so the check runs in seconds.
CONFIG = {
    "retrieval_intent": "faq",
    "epochs": 40,
    "random_seed": 42,
    "ranking_length": 0,
    "dense_dimension": {"text": 32},
    "concat_dimension": {"text": 32},
    "hidden_layers_sizes": {"text": [32], "label": [32]},
}


def featurised(storage: LocalModelStorage, context: ExecutionContext) -> tuple[Any, TrainingData]:
    """Messages through Rasa's tokenizer and word and char n-gram count featurizers."""
    examples = [
        Message(data={TEXT: f"{text} {suffix}", INTENT: "faq", INTENT_RESPONSE_KEY: key})
        for key, texts in TOPICS.items()
        for text in texts
        for suffix in ("", "please", "thanks", "asap")
    ]
    data = TrainingData(training_examples=examples)
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    featurizers = []
    for name, extra in (("words", {}), ("chars", {"analyzer": "char_wb", "max_ngram": 4})):
        config = override_defaults(CountVectorsFeaturizer.get_default_config(), extra)
        featurizer = CountVectorsFeaturizer.create(config, storage, Resource(name), context)
        featurizers.append(featurizer)
    tokenizer.process_training_data(data)
    for featurizer in featurizers:
        featurizer.train(data)
        featurizer.process_training_data(data)

    def featurise(text: str) -> Message:
        message = Message(data={TEXT: text})
        tokenizer.process([message])
        for featurizer in featurizers:
            featurizer.process([message])
        return message

    return featurise, data


def ranking(message: Message) -> dict[str, float]:
    selected = message.get("response_selector")["faq"]
    return {e["intent_response_key"]: e["confidence"] for e in selected["ranking"]}


def weights(selector: ResponseSelector) -> int:
    return int(sum(np.prod(w.shape) for w in selector.model.trainable_weights))


def main(tmp: Path) -> None:
    storage = LocalModelStorage(tmp)
    context = ExecutionContext(GraphSchema({}), "test")
    featurise, data = featurised(storage, context)
    trained: dict[str, Any] = {}
    for name, cls in (("stock", ResponseSelector), ("ours", SentenceResponseSelector)):
        config = override_defaults(cls.get_default_config(), CONFIG)
        selector = cls.create(config, storage, Resource(name), context)
        selector.train(data)
        trained[name] = (cls, config, selector)
    cls, config, ours = trained["ours"]
    loaded = cls.load(config, storage, Resource("ours"), context)
    result: dict[str, Any] = {"questions": {}, "weights": {}}
    for question in QUESTIONS:
        answers = {}
        for name, selector in (("stock", trained["stock"][2]), ("ours", ours), ("loaded", loaded)):
            message = featurise(question)
            selector.process([message])
            answers[name] = ranking(message)
        result["questions"][question] = answers
    result["weights"] = {name: weights(trained[name][2]) for name in trained}
    result["vocabulary"] = int(featurise("x").get_sparse_features(TEXT)[0].features.shape[1])
    try:
        cls.create({**config, "number_of_transformer_layers": 1}, storage, Resource("t"), context)
        result["transformer_refused"] = False
    except ValueError as error:
        result["transformer_refused"] = str(error)
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
