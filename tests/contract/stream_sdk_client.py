"""Run the official ``dingtalk-stream`` SDK, unchanged, against ``DINGTALK_OPENAPI_ENDPOINT``.

Started as a subprocess by ``test_sandbox_stream_sdk.py`` (the SDK reads the endpoint at import
time and makes blocking ``requests`` calls, so it cannot share the test's event loop). Prints
one JSON line per EVENT frame: ``{"eventId", "eventType", "messageId", "data", "answer"}``.
With ``--refuse-first`` the first delivery of each eventId is answered with code 500 (the
SDK's "consumption failed"), so the sandbox must deliver it again.
"""

from __future__ import annotations

import json
import sys

import dingtalk_stream  # type: ignore[import-untyped]
from dingtalk_stream import AckMessage


class Recorder(dingtalk_stream.EventHandler):  # type: ignore[misc]
    def __init__(self, refuse_first: bool) -> None:
        super().__init__()
        self.refuse_first = refuse_first
        self.seen: set[str] = set()

    async def process(self, event: dingtalk_stream.EventMessage) -> tuple[int, str]:
        first = event.headers.event_id not in self.seen
        self.seen.add(event.headers.event_id)
        code = AckMessage.STATUS_SYSTEM_EXCEPTION if self.refuse_first and first else 200
        line = {
            "eventId": event.headers.event_id,
            "eventType": event.headers.event_type,
            "messageId": event.headers.message_id,
            "corpId": event.headers.event_corp_id,
            "data": event.data,
            "answer": code,
        }
        print(json.dumps(line), flush=True)
        return code, "OK" if code == 200 else "later"


def main() -> None:
    app_key, app_secret = sys.argv[1], sys.argv[2]
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(app_key, app_secret))
    client.register_all_event_handler(Recorder("--refuse-first" in sys.argv))
    print(json.dumps({"started": True}), flush=True)
    client.start_forever()


if __name__ == "__main__":
    main()
