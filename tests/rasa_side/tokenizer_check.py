"""Tokenize and featurise a retrieval-intent example with QuestionTokenizer and Rasa's
CountVectorsFeaturizer; print what each message carries as JSON. Runs in the Rasa venv."""

import json
import sys
from pathlib import Path

from components.tokenizer import QuestionTokenizer
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.shared.nlu.constants import RESPONSE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ANSWER = "You can track your parcel with the link in your shipping email."


def main(tmp: Path) -> dict:
    data = TrainingData(
        training_examples=[
            Message(
                data={
                    TEXT: "where is my parcel",
                    "intent": "faq",
                    "intent_response_key": "faq/order_track",
                }
            ),
            Message(data={TEXT: "hello there", "intent": "greet"}),
        ],
        responses={"utter_faq/order_track": [{"text": ANSWER}]},
    )
    copied = data.training_examples[0].get(RESPONSE)  # Rasa copies the answer on
    storage = LocalModelStorage(tmp)
    context = ExecutionContext(GraphSchema({}), "check")
    tokenizer = QuestionTokenizer.create(
        QuestionTokenizer.get_default_config(), storage, Resource("tok"), context
    )
    featurizer = CountVectorsFeaturizer.create(
        CountVectorsFeaturizer.get_default_config(), storage, Resource("cvf"), context
    )
    data = tokenizer.process_training_data(data)
    featurizer.train(data)
    featurizer.process_training_data(data)
    faq = data.training_examples[0]
    redacted = Message(data={TEXT: "my email is [email], card [card] and [IBAN]"})
    only_label = Message(data={TEXT: "[phone]"})
    tokenizer.process([redacted, only_label])
    return {
        "redacted_tokens": [t.text for t in redacted.get("text_tokens")],
        "only_label_tokens": [t.text for t in only_label.get("text_tokens")],
        "copied_answer": copied,
        "response_after": faq.get(RESPONSE),
        "tokens": [t.text for t in faq.get("text_tokens")],
        "text_features": len([f for f in faq.features if f.attribute == TEXT]),
        # attributes the featurizer learned a vocabulary for
        "vocabularies": sorted(
            a for a, v in featurizer.vectorizers.items() if getattr(v, "vocabulary_", None)
        ),
        "responses_kept": data.responses,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
