"""The one mapping from LangChain messages to chat-template messages.

Inference prompts, SFT examples and DPO pairs all go through it, so training renders prompts
exactly as the weak node does.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

_ROLE_OF = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def chat_role(message_type: str) -> str:
    """The chat-template role of a LangChain message type (`human` -> `user`, `ai` -> `assistant`).

    The one mapping used for inference prompts, SFT examples and DPO pairs alike, so training
    renders prompts exactly as the weak node does. Roles already in template form pass through.

    Example:
        >>> chat_role("human"), chat_role("user")
        ('user', 'user')
    """
    return _ROLE_OF.get(message_type, message_type)


def to_chat(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the `{"role", "content"}` list a chat template takes.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> to_chat([HumanMessage("hi")])
        [{'role': 'user', 'content': 'hi'}]
    """
    return [{"role": chat_role(m.type), "content": m.text} for m in messages]
