"""A local chat model that answers a closed question by choosing a label (constrained decoding).

The offline strong stand-in (the general SmolLM2-135M-Instruct) does not follow an answer format
in free text: in the quality benchmark's smoke run on the ETHICS dev slice it named no label (or
echoed both from the instruction) in most replies. Evaluation harnesses score such models by
constrained decoding; so does this wrapper: it renders the same chat prompt, appends `Answer:`,
and picks the label whose first token has the highest next-token logit. It sees exactly the
prompt a free-text model would (drafts included), so a draft can still change its choice.

    strong = LabelChoiceModel(base=load_weak_model(), labels=("yes", "no", "maybe"))
"""

from __future__ import annotations

from typing import Any

import torch
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from cowest_graph.models import HFWeakModel


class LabelChoiceModel(BaseChatModel):
    """Reply `Answer: <label>` for the label with the highest first-token logit after `Answer:`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base: HFWeakModel
    labels: tuple[str, ...]
    prefix: str = "Answer:"

    def label_logprobs(self, messages: list[BaseMessage]) -> tuple[list[float], int]:
        """Log-probabilities of each label's first token after `Answer:`, and the prompt length."""
        prompt, _cut = self.base.render(messages, max_new_tokens=4)
        ids = self.base.tokenizer(prompt + self.prefix, return_tensors="pt", add_special_tokens=False)
        firsts = self._first_tokens()
        with self.base._lock, torch.inference_mode():  # the weak model's lock: one forward at a time
            logits = self.base.hf_model(**ids).logits[0, -1].float()
        return torch.log_softmax(logits, -1)[firsts].tolist(), int(ids.input_ids.shape[1])

    @property
    def _llm_type(self) -> str:
        return "cowest-label-choice"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": f"{self.base.model_id} (label choice)", "labels": list(self.labels)}

    def _first_tokens(self) -> list[int]:
        tok = self.base.tokenizer
        firsts = [tok(" " + label, add_special_tokens=False).input_ids[0] for label in self.labels]
        if len(set(firsts)) != len(firsts):
            raise ValueError(f"labels {self.labels} share a first token; cannot choose between them")
        return firsts

    def prediction(self, messages: list[BaseMessage]) -> tuple[str, float, int]:
        """The chosen label, its probability renormalised over the labels, and the prompt length."""
        scores, n = self.label_logprobs(messages)
        probs = torch.softmax(torch.tensor(scores), -1)
        best = int(probs.argmax())
        return self.labels[best], float(probs[best]), n

    def reply(self, label: str, confidence: float) -> str:
        """The reply text for the chosen label (subclasses change the wording)."""
        return f"{self.prefix} {label}"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        label, confidence, n = self.prediction(messages)
        message = AIMessage(
            self.reply(label, confidence),
            usage_metadata={"input_tokens": n, "output_tokens": 1, "total_tokens": n + 1},
            response_metadata={"model_name": self._identifying_params["model_name"]},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class ConfidenceLabelModel(LabelChoiceModel):
    """SuperICL-style plug-in (Xu et al., 2023): reply with the label a (fine-tuned) model chooses
    and its confidence, the label probabilities renormalised over the task's labels. Used as the
    weak model of the cowest graph, its reply is the draft the strong model reads.

        plug_in = ConfidenceLabelModel(base=load_weak_model(adapter=sft_dir), labels=("yes", "no"))
        plug_in.invoke("Is water wet?").content
        # 'A model fine-tuned on this task predicts: yes (confidence 0.71)'
    """

    template: str = "A model fine-tuned on this task predicts: {label} (confidence {confidence:.2f})"

    @property
    def _llm_type(self) -> str:
        return "cowest-label-confidence"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": f"{self.base.model_id} (label + confidence)", "labels": list(self.labels)}

    def reply(self, label: str, confidence: float) -> str:
        return self.template.format(label=label, confidence=confidence)
