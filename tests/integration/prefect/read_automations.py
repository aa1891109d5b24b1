"""Run by Prefect's own venv: read every automation with Prefect's client, write some back.

PREFECT_API_URL points at Tripwire. Prints, as JSON, what Prefect's models made of each
automation and of the block document behind each webhook or notification. The names
given as arguments are then written back with `update_automation`, unchanged.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.events.actions import CallWebhook, SendNotification


def main() -> None:
    seen: dict[str, Any] = {"automations": {}, "blocks": {}}
    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            actions = [*automation.actions, *automation.actions_on_trigger]
            seen["automations"][automation.name] = {
                "id": str(automation.id),
                "trigger": automation.trigger.describe_for_cli(),
                "actions": [action.describe_for_cli() for action in actions],
            }
            for action in actions:
                if not isinstance(action, CallWebhook | SendNotification):
                    continue
                document = client.read_block_document(action.block_document_id)
                block = Block._from_block_document(document)
                seen["blocks"][str(action.block_document_id)] = {
                    "block": type(block).__name__,
                    "url": block.url.get_secret_value(),
                    "method": block.method,
                    "headers": block.headers.get_secret_value(),
                }
        for name in sys.argv[1:]:
            (automation,) = client.read_automations_by_name(name)
            client.update_automation(automation.id, automation)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
