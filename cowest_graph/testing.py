"""Test helpers for users' own tests and the benchmarks: a scripted LangChain chat model.

Use it for the strong or critic side where no API is reachable; the weak side should be the real
local model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

Reply = str | AIMessage | BaseException


class ScriptedChatModel(BaseChatModel):
    """Answers with `respond(messages)`: a str, an AIMessage, or an exception to raise.

    Records every prompt it receives in `calls` (thread-safe), and reports word counts as token
    usage and `model_name` as the model, as a real endpoint would.

    Example:
        >>> strong = ScriptedChatModel(respond=lambda messages: "Paris")
        >>> strong.invoke("Capital of France?").content, len(strong.calls)
        ('Paris', 1)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    respond: Callable[[list[BaseMessage]], Reply] = Field(exclude=True)
    model_name: str = "scripted-strong"
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        with self._lock:
            return list(self._calls)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self._calls.append(list(messages))
        reply = self.respond(list(messages))
        if isinstance(reply, BaseException):
            raise reply
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=reply)
        if message.usage_metadata is None:
            n_in = sum(len(m.text.split()) for m in messages)
            n_out = len(message.text.split())
            message.usage_metadata = UsageMetadata(
                input_tokens=n_in, output_tokens=n_out, total_tokens=n_in + n_out
            )
        message.response_metadata = {"model_name": self.model_name}
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name},
        )

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self
