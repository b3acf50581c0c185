"""The Management Activity API common schema: the fields every Office 365 audit record has."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devtools.simulator.render.common import Json, RenderContext
from devtools.simulator.timefmt import management_time

if TYPE_CHECKING:
    from devtools.simulator.generator import Record


def common_schema(
    ctx: RenderContext,
    record: Record,
    *,
    record_type: int,
    operation: str,
    workload: str,
    user_id: str,
    user_key: str,
    user_type: int,
    result: str,
    object_id: str,
    client_ip: str,
) -> Json:
    return {
        "CreationTime": management_time(record.event_us),
        "Id": record.native_id,
        "Operation": operation,
        "OrganizationId": ctx.tenant_id,
        "RecordType": record_type,
        "ResultStatus": result,
        "UserKey": user_key,
        "UserType": user_type,
        "Version": 1,
        "Workload": workload,
        "ClientIP": client_ip,
        "ObjectId": object_id,
        "UserId": user_id,
    }
