"""Run by Prefect's own venv: drive Tripwire's API with Prefect's client, print what it saw.

PREFECT_API_URL points at Tripwire. Every call is Prefect's public client API, unchanged.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.events.actions import DoNothing
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import PrefectHTTPStatusError


def main() -> None:
    name = sys.argv[1]
    seen: dict[str, object] = {}
    with get_client(sync_client=True) as client:
        client.raise_for_api_version_mismatch()
        seen["healthy"] = client.api_healthcheck() is None
        automation = AutomationCore(
            name=name,
            trigger=EventTrigger(
                posture=Posture.Reactive,
                expect={"prefect.flow-run.Failed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                for_each={"prefect.resource.id"},
                threshold=2,
                within=timedelta(minutes=5),
            ),
            actions=[DoNothing()],
        )
        automation_id = client.create_automation(automation)
        seen["id"] = str(automation_id)
        read = client.read_automation(automation_id)
        assert read is not None
        seen["read_name"] = read.name
        seen["read_threshold"] = read.trigger.threshold
        seen["read_within"] = read.trigger.within.total_seconds()

        automation.trigger.threshold = 5
        automation.description = "updated by prefect's client"
        client.update_automation(automation_id, automation)
        updated = client.read_automation(automation_id)
        seen["updated_threshold"] = updated.trigger.threshold
        seen["updated_description"] = updated.description

        client.pause_automation(automation_id)
        seen["paused_enabled"] = client.read_automation(automation_id).enabled
        client.resume_automation(automation_id)
        seen["resumed_enabled"] = client.read_automation(automation_id).enabled

        seen["by_name"] = [str(a.id) for a in client.read_automations_by_name(name)]
        seen["found"] = str(client.find_automation(name).id)
        client.delete_automation(automation_id)
        try:
            client.read_automation(automation_id)
        except PrefectHTTPStatusError as exc:
            # As against Prefect's own server: its client raises on the 404.
            seen["after_delete"] = exc.response.status_code
        else:
            seen["after_delete"] = "still there"
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
