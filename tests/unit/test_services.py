"""Local services helpers that need no Node processes."""

from __future__ import annotations

import socket

import pytest

from devtools.services import LocalServices, PortInUseError, ServicePorts, ensure_port_free, free_port


def test_busy_port_gives_a_clear_message_naming_port_and_purpose() -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(
            PortInUseError, match=rf"port {port} on 127\.0\.0\.1 \(Azurite blob\) is already in use"
        ):
            ensure_port_free(port, "Azurite blob")


def test_free_port_is_bindable() -> None:
    ensure_port_free(free_port(), "anything")


def test_connection_string_points_every_service_at_its_port() -> None:
    services = LocalServices(ports=ServicePorts(blob=1, queue=2, table=3, cosmos=4))
    parts = dict(p.split("=", 1) for p in services.storage_connection_string.strip(";").split(";"))
    assert parts["BlobEndpoint"] == "http://127.0.0.1:1/devstoreaccount1"
    assert parts["QueueEndpoint"] == "http://127.0.0.1:2/devstoreaccount1"
    assert parts["TableEndpoint"] == "http://127.0.0.1:3/devstoreaccount1"
    assert services.cosmos_endpoint == "https://127.0.0.1:4/"
