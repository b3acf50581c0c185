"""FunctionInvoker: binding resolution, parameter checks and queue outputs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devtools.host.config import HostConfigError
from devtools.host.invoker import AsyncRunner, FunctionInvoker, QueueOutputBinding


@pytest.fixture
def runner() -> Iterator[AsyncRunner]:
    async_runner = AsyncRunner()
    yield async_runner
    async_runner.close()


def _only_function(app: func.FunctionApp) -> Any:
    (function,) = app.get_functions()
    return function


def _invoker(app: func.FunctionApp, runner: AsyncRunner, directory: Path) -> FunctionInvoker:
    return FunctionInvoker(_only_function(app), str(directory), runner)


def _message(body: bytes = b"payload") -> func.QueueMessage:
    return func.QueueMessage(id="m1", body=body, pop_receipt="receipt-1")


def test_out_str_produces_one_message(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    def forward(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set("forwarded:" + msg.get_body().decode())

    invoker = _invoker(app, runner, tmp_path)
    assert invoker.trigger_type == "queueTrigger"
    result = invoker.invoke(_message(b"hello"), invoker.new_context())
    binding = QueueOutputBinding(name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    assert result.queue_outputs == {binding: ["forwarded:hello"]}
    assert result.return_value is None


def test_out_list_produces_many_messages(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="outs", queue_name="Fan-Out", connection="OtherStorage")
    def fan_out(msg: func.QueueMessage, outs: func.Out[list[str]]) -> None:
        outs.set(["a", "b", "c"])

    invoker = _invoker(app, runner, tmp_path)
    result = invoker.invoke(_message(), invoker.new_context())
    binding = QueueOutputBinding(name="outs", queue_name="fan-out", connection="OtherStorage")
    assert result.queue_outputs == {binding: ["a", "b", "c"]}


def test_out_not_set_produces_no_messages(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    def maybe(msg: func.QueueMessage, out: func.Out[str]) -> None:
        return None

    invoker = _invoker(app, runner, tmp_path)
    assert invoker.invoke(_message(), invoker.new_context()).queue_outputs == {}


def test_out_empty_list_produces_no_messages(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    def empty(msg: func.QueueMessage, out: func.Out[list[str]]) -> None:
        out.set([])

    invoker = _invoker(app, runner, tmp_path)
    assert invoker.invoke(_message(), invoker.new_context()).queue_outputs == {}


def test_two_outputs_and_trigger_value(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="first", queue_name="q-one", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="second", queue_name="q-two", connection="AzureWebJobsStorage")
    def split(msg: func.QueueMessage, first: func.Out[str], second: func.Out[list[str]]) -> str:
        assert msg.id is not None
        assert msg.pop_receipt is not None
        first.set(msg.id)
        second.set([msg.pop_receipt, msg.get_body().decode()])
        return "done"

    invoker = _invoker(app, runner, tmp_path)
    result = invoker.invoke(_message(b"body"), invoker.new_context())
    assert result.return_value == "done"
    assert result.queue_outputs == {
        QueueOutputBinding("first", "q-one", "AzureWebJobsStorage"): ["m1"],
        QueueOutputBinding("second", "q-two", "AzureWebJobsStorage"): ["receipt-1", "body"],
    }


def test_async_function_with_output(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    async def async_forward(msg: func.QueueMessage, out: func.Out[str]) -> None:
        await asyncio.sleep(0)
        out.set("async")

    invoker = _invoker(app, runner, tmp_path)
    result = invoker.invoke(_message(), invoker.new_context())
    assert list(result.queue_outputs.values()) == [["async"]]


def test_invalid_output_value_type_raises(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="out-q", connection="AzureWebJobsStorage")
    def bad(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set(123)  # type: ignore[arg-type]

    invoker = _invoker(app, runner, tmp_path)
    with pytest.raises(TypeError, match="int"):
        invoker.invoke(_message(), invoker.new_context())


def test_context_parameter_by_annotation(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    def named(msg: func.QueueMessage, ctx: func.Context) -> str:
        return f"{ctx.function_name}|{ctx.function_directory}|{ctx.invocation_id}"

    invoker = _invoker(app, runner, tmp_path)
    context = invoker.new_context()
    result = invoker.invoke(_message(), context)
    assert result.return_value == f"named|{tmp_path}|{context.invocation_id}"


def test_parameter_without_binding_is_rejected(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    def unbound(msg: func.QueueMessage, extra: str) -> None:
        return None

    with pytest.raises(HostConfigError, match="'extra' has no binding"):
        _invoker(app, runner, tmp_path)


def test_setting_reference_in_queue_name_is_resolved(
    runner: AsyncRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOC_TEST_INPUT_QUEUE", "Orders-In")
    monkeypatch.setenv("AOC_TEST_OUTPUT_QUEUE", "Orders-Out")
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%AOC_TEST_INPUT_QUEUE%", connection="AzureWebJobsStorage")
    @app.queue_output(
        arg_name="out", queue_name="%AOC_TEST_OUTPUT_QUEUE%-copy", connection="AzureWebJobsStorage"
    )
    def resolved(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set("x")

    invoker = _invoker(app, runner, tmp_path)
    assert invoker.trigger["queueName"] == "Orders-In"
    binding = QueueOutputBinding("out", "orders-out-copy", "AzureWebJobsStorage")
    assert invoker.queue_outputs == {"out": binding}
    assert invoker.invoke(_message(), invoker.new_context()).queue_outputs == {binding: ["x"]}


def test_missing_setting_reference_is_rejected(
    runner: AsyncRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOC_TEST_UNSET_QUEUE", raising=False)
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%AOC_TEST_UNSET_QUEUE%", connection="AzureWebJobsStorage")
    def unresolved(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(HostConfigError, match="AOC_TEST_UNSET_QUEUE"):
        _invoker(app, runner, tmp_path)


def test_blob_binding_is_rejected(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.route(route="blob", auth_level=func.AuthLevel.ANONYMOUS)
    @app.blob_input(arg_name="blob", path="container/name.txt", connection="AzureWebJobsStorage")
    def with_blob(req: func.HttpRequest, blob: str) -> func.HttpResponse:
        return func.HttpResponse(blob)

    with pytest.raises(HostConfigError, match="blob"):
        _invoker(app, runner, tmp_path)


def test_blob_output_binding_is_rejected(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.blob_output(arg_name="out", path="container/out.txt", connection="AzureWebJobsStorage")
    def to_blob(msg: func.QueueMessage, out: func.Out[str]) -> None:
        out.set("x")

    with pytest.raises(HostConfigError, match="not supported"):
        _invoker(app, runner, tmp_path)


def test_unsupported_trigger_is_rejected(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="container/{name}", connection="AzureWebJobsStorage")
    def on_blob(blob: func.InputStream) -> None:
        return None

    with pytest.raises(HostConfigError, match="blobTrigger"):
        _invoker(app, runner, tmp_path)


def test_http_trigger_binding_is_exposed(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.route(route="things/{id}", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
    def things(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(req.route_params["id"])

    invoker = _invoker(app, runner, tmp_path)
    assert invoker.name == "things"
    assert invoker.trigger_type == "httpTrigger"
    assert invoker.trigger["route"] == "things/{id}"
    assert invoker.trigger["authLevel"] == "admin"
    assert invoker.queue_outputs == {}


def test_return_value_queue_output(runner: AsyncRunner, tmp_path: Path) -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="in-q", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="$return", queue_name="returned", connection="AzureWebJobsStorage")
    def returns(msg: func.QueueMessage) -> list[str]:
        return ["r1", "r2"]

    invoker = _invoker(app, runner, tmp_path)
    result = invoker.invoke(_message(), invoker.new_context())
    assert result.return_value == ["r1", "r2"]
    assert result.queue_outputs == {
        QueueOutputBinding("$return", "returned", "AzureWebJobsStorage"): ["r1", "r2"]
    }
