"""Train FlatIntentClassifier on hand-made features, save, load, and print what it
predicts as JSON. Runs in the Rasa venv: `python flat_classifier_check.py TMPDIR`."""

import json
import sys
from pathlib import Path

import numpy as np
from components.flat_classifier import FlatIntentClassifier
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy.sparse import coo_matrix

DIM = 4  # feature 0: "track" words, 1: "refund" words, 2: "awful", 3: noise


def message(text: str, hot: int, intent: str = "", key: str = "") -> Message:
    row = np.zeros((1, DIM))
    row[0, hot] = 1.0
    row[0, 3] = len(text) % 2  # something for the model to ignore
    data = {TEXT: text}
    if intent:
        data[INTENT] = intent
    if key:
        data[INTENT_RESPONSE_KEY] = key
    msg = Message(data=data)
    msg.add_features(Features(coo_matrix(row), "sentence", TEXT, "test"))
    return msg


def main(tmp: Path) -> None:
    # Thousands of FAQ examples against a few complaints: Rasa's balanced pooled "faq"
    # class would drown the FAQ examples' weight; here each topic is a class of its own.
    examples = [message(f"where is parcel {i}", 0, "faq", "faq/order_track") for i in range(300)]
    examples += [message(f"refund {i} pending", 1, "faq", "faq/refund_status") for i in range(300)]
    examples += [message(f"awful service {i}", 2, "feedback_complaint") for i in range(8)]
    responses = {
        "utter_faq/order_track": [{"text": "Track it here."}],
        "utter_faq/refund_status": [{"text": "Refunds take 5 days."}],
        "utter_greet": [{"text": "Hi"}],
    }
    training = TrainingData(training_examples=examples, responses=responses)
    storage = LocalModelStorage(tmp)
    resource = Resource("flat")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {**FlatIntentClassifier.get_default_config(), "topic_weight": 0.5}
    trained = FlatIntentClassifier.create(config, storage, resource, context)
    trained.train(training)
    clf = FlatIntentClassifier.load(config, storage, resource, context)
    with storage.read_from(resource) as model_dir:
        saved_files = sorted(p.name for p in model_dir.iterdir())
    # A model saved before the weights were plain arrays: Rasa's skops format.
    old = FlatIntentClassifier.create(config, storage, Resource("old"), context)
    old.clf = trained.clf
    LogisticRegressionClassifier.persist(old)
    old_loaded = FlatIntentClassifier.load(config, storage, Resource("old"), context)

    # The selector leans (wrongly) to refund_status; the linear model is sure it is tracking.
    msg = message("where is my parcel", 0)
    msg.set(
        "response_selector",
        {
            "all_retrieval_intents": ["faq"],
            "faq": {
                "response": {
                    "responses": [{"text": "Refunds take 5 days."}],
                    "confidence": 0.6,
                    "intent_response_key": "faq/refund_status",
                    "utter_action": "utter_faq/refund_status",
                },
                "ranking": [
                    {"id": 1, "confidence": 0.6, "intent_response_key": "faq/refund_status"},
                    {"id": 2, "confidence": 0.4, "intent_response_key": "faq/order_track"},
                ],
            },
        },
        add_to_output=True,
    )
    complaint = message("awful", 2)
    # Weights kept column-major after loading; the probabilities are those of row-major.
    X = clf._create_X([message("where is my parcel", 0), complaint])
    column_major = bool(clf.clf.coef_.flags.f_contiguous)
    fast = clf.clf.predict_proba(X)
    clf.clf.coef_ = np.ascontiguousarray(clf.clf.coef_)
    same = bool(np.allclose(fast, clf.clf.predict_proba(X), rtol=0, atol=1e-12))
    as_trained = bool(np.array_equal(fast, trained.clf.predict_proba(X)))
    old_as_trained = bool(np.array_equal(fast, old_loaded.clf.predict_proba(X)))
    clf._column_major()
    clf.process([msg, complaint])

    # No ResponseSelector in the pipeline: the classifier writes the selector's output.
    alone = message("where is my parcel", 0)
    clf.process([alone])
    # Close topics: with a margin set, the message goes to the fallback, topics kept.
    both = message("parcel refund", 0)
    row = np.zeros((1, DIM))
    row[0, 0] = row[0, 1] = 1.0
    both.features = [Features(coo_matrix(row), "sentence", TEXT, "test")]
    clear = message("where is my parcel", 0)
    careful = FlatIntentClassifier.load(
        {**config, "topic_margin": 0.3}, storage, resource, context
    )
    careful.process([both, clear])
    print(
        json.dumps(
            {
                "intent": msg.get("intent"),
                "intent_names": [e["name"] for e in msg.get("intent_ranking")],
                "response": msg.get("response_selector")["faq"]["response"],
                "ranking": msg.get("response_selector")["faq"]["ranking"],
                "complaint_intent": complaint.get("intent")["name"],
                "responses_kept": sorted(clf.responses),
                "column_major": column_major,
                "same_probabilities": same,
                "loaded_as_trained": as_trained,
                "old_format_as_trained": old_as_trained,
                "saved_files": saved_files,
                "alone": alone.get("response_selector"),
                "alone_intent": alone.get("intent")["name"],
                "close_intent": both.get("intent"),
                "close_ranking": both.get("response_selector")["faq"]["ranking"],
                "close_first_intents": [e["name"] for e in both.get("intent_ranking")[:2]],
                "clear_with_margin": clear.get("intent")["name"],
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
