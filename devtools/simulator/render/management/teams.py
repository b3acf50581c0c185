"""Audit.General: Microsoft Teams team, member and channel operations."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from devtools.simulator.directory import guid
from devtools.simulator.render.common import Json, RecordBuilder, RenderContext, Template, random_ip
from devtools.simulator.render.management.common_schema import common_schema

if TYPE_CHECKING:
    from devtools.simulator.generator import Record


_TEAMS = ("Ventes Europe \u2013 Équipe", "Project Fjørd", "営業チーム", "Finance Team", "Helpdesk")


def _team_operation_builder(operation: str) -> RecordBuilder:
    def build(rng: random.Random, ctx: RenderContext, record: Record) -> Json:
        user = rng.choice(ctx.directory.users)
        team = rng.choice(_TEAMS)
        team_rng = random.Random(f"team:{team}")  # noqa: S311 - stable ids per team
        team_guid = f"19:{team_rng.getrandbits(128):032x}@thread.tacv2"
        group_id = guid(team_rng)
        out = common_schema(
            ctx, record, record_type=25, operation=operation, workload="MicrosoftTeams",
            user_id=user.upn, user_key=user.id, user_type=0, result="Succeeded", object_id=team,
            client_ip=random_ip(rng),
        )  # fmt: skip
        out.update(
            {"AADGroupId": group_id, "CommunicationType": "Team", "TeamName": team, "TeamGuid": team_guid}
        )
        if operation == "MemberAdded":
            members = rng.sample(ctx.directory.users, k=rng.randint(1, 3))
            out["Members"] = [{"DisplayName": m.display_name, "Role": 1, "UPN": m.upn} for m in members]
        elif operation == "ChannelAdded":
            out.update(
                {
                    "ChannelName": rng.choice(("Général", "Ankündigungen", "雑談", "Incident war room")),
                    "ChannelGuid": f"19:{rng.getrandbits(128):032x}@thread.tacv2",
                    "ChannelType": rng.choice(("Standard", "Private")),
                }
            )
        return out

    return build


TEMPLATES: tuple[Template, ...] = (
    Template("TeamCreated", 1, _team_operation_builder("TeamCreated")),
    Template("MemberAdded", 3, _team_operation_builder("MemberAdded")),
    Template("ChannelAdded", 2, _team_operation_builder("ChannelAdded")),
)
