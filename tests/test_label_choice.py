"""The benchmark's constrained-decoding models on the real SmolLM2: label choice and SuperICL's
label + confidence plug-in."""

from __future__ import annotations

import math
import re

import pytest
from langchain_core.messages import HumanMessage

from benchmarks.label_choice import ConfidenceLabelModel, LabelChoiceModel
from cowest_graph.models import WeakModel

LABELS = ("yes", "no", "maybe")
QUESTION = [HumanMessage("Is the sky blue on a clear day? Reply with yes, no or maybe.")]


def test_label_choice_answers_the_argmax_label(weak: WeakModel) -> None:
    model = LabelChoiceModel(base=weak, labels=LABELS)
    scores, n = model.label_logprobs(QUESTION)
    reply = model.invoke(QUESTION)
    assert reply.content == f"Answer: {LABELS[scores.index(max(scores))]}"
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] == n > 10


def test_confidence_is_the_label_probability_renormalised(weak: WeakModel) -> None:
    plug_in = ConfidenceLabelModel(base=weak, labels=LABELS)
    scores, _ = plug_in.label_logprobs(QUESTION)
    total = sum(math.exp(s) for s in scores)
    best = max(range(3), key=scores.__getitem__)
    text = str(plug_in.invoke(QUESTION).content)
    match = re.fullmatch(r"A model fine-tuned on this task predicts: (\w+) \(confidence ([01]\.\d\d)\)", text)
    assert match, text
    assert match.group(1) == LABELS[best]
    assert float(match.group(2)) == pytest.approx(math.exp(scores[best]) / total, abs=0.006)
    assert 1 / 3 <= float(match.group(2)) <= 1


def test_labels_sharing_a_first_token_are_refused(weak: WeakModel) -> None:
    with pytest.raises(ValueError, match="share a first token"):
        ConfidenceLabelModel(base=weak, labels=("no", "no way")).invoke(QUESTION)


@pytest.mark.parametrize("label", LABELS)
def test_label_choice_picks_the_label_a_prompt_makes_obvious(weak: WeakModel, label: str) -> None:
    """An expectation that does not come from the method under test: the prompt names the answer.
    (World knowledge is no check at 135M: asked "Is fire hot?" it chooses "no".)"""
    model = LabelChoiceModel(base=weak, labels=LABELS)
    prompt = [HumanMessage(f"Repeat after me: {label}. Reply with one of: yes, no, maybe.")]
    assert model.invoke(prompt).content == f"Answer: {label}"
