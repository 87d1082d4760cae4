"""Retries and timeouts for the strong-model and judge calls.

The policy is LangGraph's `RetryPolicy` (the type users already know), applied per model call
rather than per node: one draft whose refinement keeps failing does not re-run its siblings, and
when it fails for good it is recorded as failed while the other drafts go on. The mechanism is
LangChain's `Runnable.with_retry` (tenacity, exponential backoff with jitter).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.types import RetryPolicy


def transient_errors() -> tuple[type[BaseException], ...]:
    """Exception types worth retrying: timeouts, connection resets, HTTP 429 and 5xx.

    Example:
        >>> TimeoutError in transient_errors()
        True
    """
    errors: list[type[BaseException]] = [TimeoutError, ConnectionError]
    try:
        import httpx

        errors += [httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError]
    except ImportError:  # pragma: no cover - httpx comes with langchain-openai
        pass
    try:
        import openai

        errors += [
            openai.RateLimitError,  # 429
            openai.InternalServerError,  # >= 500
            openai.APIConnectionError,  # includes APITimeoutError
        ]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


DEFAULT_RETRY = RetryPolicy(
    initial_interval=0.5, backoff_factor=2.0, max_interval=20.0, max_attempts=4, jitter=True
)
"""Four attempts, 0.5 s doubling up to 20 s, with jitter."""


def with_call_policy(
    model: BaseChatModel | Runnable[Any, Any],
    *,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    timeout: float | None = None,
) -> Runnable[Any, Any]:
    """Wrap a chat model so each call has a timeout and is retried on transient errors.

    `retry.retry_on` may be an exception type, a tuple of them, or a predicate; LangGraph's default
    predicate is replaced by `transient_errors()`. Non-transient errors (a bad request, a parse
    error) are raised at once.

    Example:
        >>> safe = with_call_policy(strong, timeout=30)  # doctest: +SKIP
        >>> await safe.ainvoke(messages)  # doctest: +SKIP
    """
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    runnable: Runnable[Any, Any] = model
    if timeout is not None:

        async def _acall(messages: Any, config: RunnableConfig) -> Any:
            return await asyncio.wait_for(model.ainvoke(messages, config), timeout)

        def _call(messages: Any, config: RunnableConfig) -> Any:
            # The model's own sync path in a worker thread (never a throwaway event loop: async
            # clients cached across loops break); past the timeout the call is abandoned.
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cowest-call")
            future = pool.submit(contextvars.copy_context().run, model.invoke, messages, config)
            try:
                return future.result(timeout)
            except TimeoutError as exc:
                raise TimeoutError(f"model call took longer than {timeout} s") from exc
            finally:
                pool.shutdown(wait=False)

        runnable = RunnableLambda(_call, afunc=_acall, name=getattr(model, "name", None) or "model")
    if retry is None or retry.max_attempts <= 1:
        return runnable
    retry_on: Any = retry.retry_on
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    elif retry_on is RetryPolicy._field_defaults["retry_on"]:
        # LangGraph's default predicate does not retry TimeoutError (an OSError); ours does.
        retry_on = transient_errors()
    return runnable.with_retry(
        retry_if_exception_type=retry_on,
        wait_exponential_jitter=True,
        exponential_jitter_params={
            "initial": retry.initial_interval,
            "max": retry.max_interval,
            "exp_base": retry.backoff_factor,
            "jitter": retry.initial_interval if retry.jitter else 0.0,
        },
        stop_after_attempt=retry.max_attempts,
    )
