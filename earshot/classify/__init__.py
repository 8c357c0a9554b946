"""Classify free-text customer feedback: type, sentiment and the product it is about.

    classify("the doorbell keeps disconnecting", {"doorbell": ["Ring Pro", "doorbell"]})
    # Classification(type='problem', type_confidence=0.98, sentiment=-0.49, product='doorbell')

Importing this package does no I/O: the model is read on the first call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field

from earshot.classify.model import MODEL_VERSION, load_model
from earshot.classify.products import find_product

__all__ = [
    "MODEL_VERSION",
    "Classification",
    "FeedbackType",
    "classify",
    "classify_jsonl",
    "prepare",
]

FeedbackType = Literal["problem", "idea", "other"]

# Reviews are short; capping the input bounds the regex and n-gram work on pasted logs.
MAX_CHARS = 5000


class Classification(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: FeedbackType
    type_confidence: float = Field(ge=0.0, le=1.0)
    sentiment: float = Field(ge=-1.0, le=1.0)
    product: str | None = None


def classify(
    text: str,
    catalogue: Mapping[str, Sequence[str]] | None = None,
    language: str | None = None,
) -> Classification:
    """Type (problem/idea/other) with its probability, sentiment in [-1, 1], product key or None.

    English and Dutch. `language` ("en" or "nl") picks the sentiment lexicon; None (the
    default) guesses it from the text. The type model and product matching need no hint.
    """
    text = text[:MAX_CHARS]
    product = find_product(text, catalogue)
    if not text.strip():
        return Classification(type="other", type_confidence=1.0, sentiment=0.0, product=product)
    scores = load_model().score(text, language)
    label, confidence = max(scores.probs.items(), key=lambda kv: kv[1])
    return Classification(
        type=label,  # pydantic rejects anything but problem/idea/other
        type_confidence=round(confidence, 4),
        sentiment=round(scores.sentiment, 4),
        product=product,
    )


def prepare(texts: Sequence[str]) -> None:
    """Compute the sentence vectors `classify` will need for many texts in one batch (an
    import): the model's English sentence encoder costs ~10 ms a text alone, ~2 in a batch,
    and keeps what it computed for the calls that follow."""
    from earshot.classify.sentiment import looks_dutch

    emb = load_model().embedding or {}
    if float(emb.get("minilm", 0.0)) <= 0:
        return
    from earshot.sentence_encoder import encoder

    enc = encoder()
    english = [t[:MAX_CHARS] for t in texts if t.strip() and not looks_dutch(t[:MAX_CHARS])]
    if enc is not None and english:
        enc.encode(english)


def classify_jsonl(
    in_stream: TextIO, out_stream: TextIO, catalogue: Mapping[str, Sequence[str]] | None = None
) -> int:
    """Copy JSON lines {"text": ...} adding type, sentiment and product.

    A line that is not a JSON object with a string "text" is written back with an "error"
    (invalid JSON becomes {"error": ..., "line": n}) and the stream goes on. Blank lines are
    skipped. Returns the number of lines classified.
    """
    done = 0
    for n, line in enumerate(in_stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            out = {"error": f"invalid JSON: {e.msg}", "line": n}
        else:
            if not isinstance(obj, dict):
                out = {"error": "expected a JSON object", "line": n}
            elif not isinstance(obj.get("text"), str):
                out = {**obj, "error": 'missing or non-string "text"'}
            else:
                c = classify(obj["text"], catalogue)
                out = {**obj, "type": c.type, "sentiment": c.sentiment, "product": c.product}
                done += 1
        out_stream.write(json.dumps(out, ensure_ascii=False) + "\n")
    return done
