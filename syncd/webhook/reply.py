"""The encrypted ``success`` reply, sealed once per tenant and second instead of per push.

DingTalk's reply (reference 5.5) is not bound to the push it answers: it is ``success``
encrypted with the tenant's EncodingAESKey and owner key, signed with the tenant's token
over a timestamp and nonce the receiver chooses (a fresh timestamp or the request's; the
official Python sample uses epoch *seconds*). DingTalk checks that the signature matches and
that it decrypts to ``success``. So one sealed reply may answer every push of a tenant for a
short while: :data:`REUSE_S` keeps its timestamp within a second of the answer, and a
change of the tenant's credentials (a config reload) seals a new one at once. Verification,
decryption and dedupe of the *request* are untouched: a forged push never reaches this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from syncd import crypto

REUSE_S = 1.0
"""How long one sealed reply answers a tenant's pushes (its timestamp is at most this old)."""

Credentials = tuple[str, str, str]
"""A tenant's callback token, EncodingAESKey and owner key."""


@dataclass
class ReplyCache:
    """Per tenant: the credentials, wall-clock second of sealing and JSON body of its reply."""

    reuse_s: float = REUSE_S
    _kept: dict[str, tuple[Credentials, float, bytes]] = field(default_factory=dict)

    def body(self, tenant_id: str, credentials: Credentials, now: float) -> bytes:
        """The JSON body of the ``success`` reply for ``tenant_id`` at wall-clock ``now``."""
        kept = self._kept.get(tenant_id)
        if kept is not None and kept[0] == credentials and 0 <= now - kept[1] < self.reuse_s:
            return kept[2]
        token, aes_key, owner_key = credentials
        reply = crypto.reply_success(token, aes_key, owner_key, timestamp=str(int(now * 1000)))
        body = json.dumps(reply).encode()
        self._kept[tenant_id] = (credentials, now, body)
        return body
