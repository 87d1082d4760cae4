"""An agent that calls the cowest subgraph as a tool, and a parent graph that uses it as a node.

    HF_HUB_OFFLINE=1 python examples/drop_in_agent.py

Offline there is no tool-calling chat model, so the agent's model here is a tiny scripted one that
calls the tool once and reports its answer; swap in `ChatOpenAI(model=...)` for a real agent.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any  # noqa: E402

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402

from cowest_graph import create_cowest_graph, create_cowest_tool, load_weak_model  # noqa: E402


class OneToolCallModel(BaseChatModel):
    """Calls the expert tool with the user's question, then repeats what the tool said."""

    tool_name: str = "ask_domain_expert"

    @property
    def _llm_type(self) -> str:
        return "one-tool-call"

    def bind_tools(self, tools: Any, **kwargs: Any) -> OneToolCallModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        results = [m for m in messages if m.type == "tool"]
        if results:
            reply = AIMessage(f"According to the experts: {results[-1].text}")
        else:
            question = next(m.text for m in reversed(messages) if m.type == "human")
            reply = AIMessage(
                "", tool_calls=[{"name": self.tool_name, "args": {"question": question}, "id": "call-1"}]
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def main(question: str = "What is the capital of France?", max_new_tokens: int = 32) -> dict[str, Any]:
    weak = load_weak_model(max_new_tokens=max_new_tokens, temperature=0.7)
    strong = load_weak_model(max_new_tokens=max_new_tokens, temperature=0.0)
    cowest = create_cowest_graph(weak, strong, critic=strong, num_drafts=2).compile(name="cowest")

    # 1. As a tool of an agent.
    agent = create_agent(OneToolCallModel(), tools=[create_cowest_tool(cowest)])
    out = agent.invoke({"messages": [HumanMessage(question)]})
    print("agent:", out["messages"][-1].text)

    # 2. As a node of a parent MessagesState graph.
    parent = StateGraph(MessagesState)
    parent.add_node("cowest", cowest)
    parent.add_edge(START, "cowest")
    nested = parent.compile().invoke({"messages": [HumanMessage(question)]})
    print("parent graph:", nested["messages"][-1].text)
    return {"agent": out, "parent": nested}


if __name__ == "__main__":
    main()
