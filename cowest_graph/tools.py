"""The cowest subgraph as a tool an agent can call."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, Field


class _AskInput(BaseModel):
    question: str = Field(description="A self-contained question for the domain expert team.")


def create_cowest_tool(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    *,
    name: str = "ask_domain_expert",
    description: str = (
        "Ask a domain expert team (a specialised small model drafts, a strong model refines, "
        "a critic checks). Input: one self-contained question. Output: the best answer."
    ),
) -> BaseTool:
    """Wrap a compiled cowest graph as a tool (for `create_agent`, ToolNode, ...).

    The tool passes the agent's config on, so callbacks such as `CowestTracer` see the run.

    Example:
        >>> tool = create_cowest_tool(create_cowest_graph(weak, strong).compile())  # doctest: +SKIP
        >>> agent = create_agent(model, tools=[tool])  # doctest: +SKIP
    """

    async def _arun(question: str, config: RunnableConfig) -> str:
        out = await graph.ainvoke({"question": question}, config)
        return str(out["answer"])

    def _run(question: str, config: RunnableConfig) -> str:
        out = graph.invoke({"question": question}, config)
        return str(out["answer"])

    return StructuredTool.from_function(
        func=_run, coroutine=_arun, name=name, description=description, args_schema=_AskInput
    )
