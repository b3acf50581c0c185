"""Binds a registered function's trigger and outputs and calls it, as the Python worker would."""

from __future__ import annotations

import asyncio
import inspect
import threading
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from devtools.host.config import HostConfigError, resolve_setting_references

SUPPORTED_TRIGGERS = ("httpTrigger", "timerTrigger", "queueTrigger")
SUPPORTED_OUTPUTS = ("http", "queue")


class OutValue(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None
        self.is_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.is_set = True

    def get(self) -> Any:
        return self._value


class _RetryContext(functions_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> functions_abc.RpcException:
        raise AttributeError("no retry policy: this invocation is not a retry")


class _TraceContext(functions_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace = _TraceContext()
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return _RetryContext()

    @property
    def thread_local_storage(self) -> threading.local:  # type: ignore[override]
        return self._local


@dataclass(frozen=True)
class QueueOutputBinding:
    name: str
    queue_name: str
    connection: str


@dataclass
class InvocationResult:
    return_value: Any
    queue_outputs: dict[QueueOutputBinding, list[str | bytes]] = field(default_factory=dict)


class AsyncRunner:
    """One event loop on its own thread for every `async def` function, as the worker has."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="async-functions", daemon=True)
        self._thread.start()

    def run(self, coroutine: typing.Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def _is_context_parameter(parameter: inspect.Parameter, hints: dict[str, Any]) -> bool:
    hint = hints.get(parameter.name)
    return parameter.name == "context" or (inspect.isclass(hint) and issubclass(hint, func.Context))


class FunctionInvoker:
    """A function from `app.get_functions()`, its bindings resolved against app settings."""

    def __init__(self, function: Any, app_directory: str, async_runner: AsyncRunner) -> None:
        self.name: str = function.get_function_name()
        self.user_function: Callable[..., Any] = function.get_user_function()
        self.app_directory = app_directory
        self._async_runner = async_runner
        bindings = [
            {k: (v.value if hasattr(v, "value") else v) for k, v in b.get_dict_repr().items()}
            for b in function.get_bindings()
        ]
        self.bindings = [
            {k: resolve_setting_references(v) for k, v in binding.items()} for binding in bindings
        ]
        triggers = [b for b in self.bindings if str(b["type"]).endswith("Trigger")]
        if len(triggers) != 1:
            raise HostConfigError(f"function '{self.name}' must have exactly one trigger")
        self.trigger: dict[str, Any] = triggers[0]
        if self.trigger["type"] not in SUPPORTED_TRIGGERS:
            raise HostConfigError(
                f"function '{self.name}': the local host does not run {self.trigger['type']} triggers"
            )
        self.queue_outputs: dict[str, QueueOutputBinding] = {}
        for binding in self.bindings:
            if binding is self.trigger:
                continue
            if binding["type"] not in SUPPORTED_OUTPUTS or binding.get("direction") != 1:
                raise HostConfigError(
                    f"function '{self.name}': binding '{binding['name']}' of type {binding['type']} "
                    "is not supported by the local host"
                )
            if binding["type"] == "queue":
                self.queue_outputs[binding["name"]] = QueueOutputBinding(
                    name=binding["name"],
                    queue_name=str(binding["queueName"]).lower(),
                    connection=str(binding.get("connection") or "AzureWebJobsStorage"),
                )
        self._signature = inspect.signature(self.user_function)
        try:
            self._hints = typing.get_type_hints(self.user_function)
        except Exception:  # unresolvable annotations: fall back to names
            self._hints = {}
        self._check_parameters()

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    def _check_parameters(self) -> None:
        known = {self.trigger["name"], *self.queue_outputs}
        for parameter in self._signature.parameters.values():
            if parameter.name not in known and not _is_context_parameter(parameter, self._hints):
                raise HostConfigError(f"function '{self.name}': parameter '{parameter.name}' has no binding")

    def new_context(self) -> InvocationContext:
        return InvocationContext(self.name, self.app_directory)

    def invoke(self, trigger_value: Any, context: InvocationContext) -> InvocationResult:
        arguments: dict[str, Any] = {}
        outs: dict[str, OutValue] = {}
        for parameter in self._signature.parameters.values():
            if parameter.name == self.trigger["name"]:
                arguments[parameter.name] = trigger_value
            elif parameter.name in self.queue_outputs:
                outs[parameter.name] = arguments[parameter.name] = OutValue()
            else:
                arguments[parameter.name] = context
        if inspect.iscoroutinefunction(self.user_function):
            return_value = self._async_runner.run(self.user_function(**arguments))
        else:
            return_value = self.user_function(**arguments)

        result = InvocationResult(return_value=return_value)
        for name, binding in self.queue_outputs.items():
            if name == "$return":
                messages = _as_messages(return_value)
            else:
                out = outs.get(name)
                messages = _as_messages(out.get()) if out is not None and out.is_set else []
            if messages:
                result.queue_outputs[binding] = messages
        return result


def _as_messages(value: Any) -> list[str | bytes]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [m for item in value for m in _as_messages(item)]
    if isinstance(value, str | bytes):
        return [value]
    if isinstance(value, func.QueueMessage):
        return [value.get_body()]
    raise TypeError(f"queue output must be str, bytes or a list of them, not {type(value).__name__}")
