"""A throwaway function app that exercises the local host's semantics. Not shipped."""

import json
import os
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
_lock = threading.Lock()


def record(event: dict) -> None:
    event["at"] = time.time()
    with _lock, open(os.environ["HOST_TEST_EVENTS"], "a", encoding="utf-8") as events:
        events.write(json.dumps(event) + "\n")


@app.route(route="items/{id:int}/{name?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def items(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "method": req.method,
        "body": req.get_body().decode(),
        "probe_header": req.headers.get("x-probe"),
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"X-Handled-By": "items"}
    )


@app.route(route="secure", methods=["GET"])
def secure(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function-level ok")


@app.route(route="admin-only", methods=["POST"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin ok")


@app.route(route="relay", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="out", queue_name="echo-in", connection="AzureWebJobsStorage")
def relay(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="%FAIL_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    record({"fn": "always_fails", "body": msg.get_body().decode(), "dequeue_count": msg.dequeue_count})
    raise RuntimeError("this function always fails")


@app.queue_trigger(arg_name="msg", queue_name="outputs-in", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="outputs-out", connection="AzureWebJobsStorage")
def outputs(msg: func.QueueMessage, out: func.Out[list[str]]) -> None:
    body = msg.get_body().decode()
    out.set([f"{body}-1", f"{body}-2"])
    record({"fn": "outputs", "body": body, "dequeue_count": msg.dequeue_count})
    if body.startswith("fail"):
        raise RuntimeError("failed after setting outputs")


@app.queue_trigger(arg_name="msg", queue_name="echo-in", connection="AzureWebJobsStorage")
def echo(msg: func.QueueMessage, context: func.Context) -> None:
    record(
        {
            "fn": "echo",
            "body": msg.get_body().decode(),
            "id": msg.id,
            "dequeue_count": msg.dequeue_count,
            "has_pop_receipt": bool(msg.pop_receipt),
            "has_insertion_time": msg.insertion_time is not None,
            "invocation_id": context.invocation_id,
        }
    )


@app.queue_trigger(arg_name="msg", queue_name="slow-in", connection="AzureWebJobsStorage")
def slow(msg: func.QueueMessage) -> None:
    record(
        {"fn": "slow", "phase": "start", "body": msg.get_body().decode(), "dequeue_count": msg.dequeue_count}
    )
    time.sleep(float(os.environ.get("SLOW_SECONDS", "2.0")))
    record({"fn": "slow", "phase": "end", "body": msg.get_body().decode()})


@app.queue_trigger(arg_name="msg", queue_name="idle-in", connection="AzureWebJobsStorage")
def idle(msg: func.QueueMessage) -> None:
    record({"fn": "idle", "body": msg.get_body().decode()})


@app.queue_trigger(arg_name="msg", queue_name="disabled-in", connection="AzureWebJobsStorage")
def switched_off(msg: func.QueueMessage) -> None:
    record({"fn": "switched_off", "body": msg.get_body().decode()})


@app.timer_trigger(schedule="*/2 * * * * *", arg_name="timer", run_on_startup=False)
def every_two_seconds(timer: func.TimerRequest) -> None:
    record({"fn": "every_two_seconds", "phase": "start", "past_due": timer.past_due})
    time.sleep(float(os.environ.get("TIMER_RUN_SECONDS", "3.5")))
    record({"fn": "every_two_seconds", "phase": "end"})


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def yearly_with_startup(timer: func.TimerRequest) -> None:
    record({"fn": "yearly_with_startup", "past_due": timer.past_due})
