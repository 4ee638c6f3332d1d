"""WebDAV-Push (draft-bitfire-webdav-push-00): discover it on a collection, subscribe to it.

A server that offers it lists ``{https://bitfire.at/webdav-push}transports`` with a
``web-push`` child on the calendar collection. A client subscribes by POSTing a
``push-register`` document naming its *push resource* (an https URL the server POSTs a
message to on every change of the collection), the message encryption keys (RFC 8291:
a P-256 public key and a 16-byte auth secret, both required by Xandikos) and the expiry
it asks for; the server answers 201 (new) or 200 (the same push resource again: renewed)
with ``Location`` (the subscription) and ``Expires``.

syncd never decrypts the messages: the unguessable push resource URL already says which
binding changed, and a message only asks for a reconcile of it (idempotent, coalesced).
So the private key is not kept; the keys exist because the server requires them.
"""

from __future__ import annotations

import base64
import email.utils
import secrets
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syncd.adapters.caldav._errors import Op
from syncd.adapters.caldav._http import DavHttp

NS = "https://bitfire.at/webdav-push"

DISCOVER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<D:propfind xmlns:D="DAV:" xmlns:P="{NS}"><D:prop><P:transports/></D:prop></D:propfind>'
)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A registered subscription: where the server keeps it, until when (Unix time),
    and whether it was new (201) or an existing one renewed (200)."""

    location: str | None
    expires: float
    renewed: bool


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def message_keys() -> tuple[str, str]:
    """A fresh P-256 public key (uncompressed point) and auth secret, base64url."""
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    point = public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return _b64url(point), _b64url(secrets.token_bytes(16))


def register_body(push_resource: str, expires: float) -> str:
    """The ``push-register`` document for ``push_resource``, asking for ``expires``."""
    key, auth = message_keys()
    when = email.utils.formatdate(expires, usegmt=True)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<P:push-register xmlns:D="DAV:" xmlns:P="{NS}">'
        "<P:subscription><P:web-push-subscription>"
        f"<P:push-resource>{escape(push_resource)}</P:push-resource>"
        "<P:content-encoding>aes128gcm</P:content-encoding>"
        f'<P:subscription-public-key type="p256dh">{key}</P:subscription-public-key>'
        f"<P:auth-secret>{auth}</P:auth-secret>"
        "</P:web-push-subscription></P:subscription>"
        "<P:trigger><P:content-update><D:depth>1</D:depth></P:content-update></P:trigger>"
        f"<P:expires>{when}</P:expires>"
        "</P:push-register>"
    )


def offers_web_push(tree: Any) -> bool:
    """True if a PROPFIND answer (parsed multistatus) lists a ``web-push`` transport."""
    if tree is None:
        return False
    return any(True for _ in tree.iter(f"{{{NS}}}web-push"))


def expires_of(headers: Any, asked: float) -> float:
    """The subscription's expiry from the ``Expires`` header (the asked one if absent)."""
    value = headers.get("Expires")
    if not value:
        return asked
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return asked


async def subscribe(http: DavHttp, push_resource: str, expires: float) -> Subscription | None:
    """Register ``push_resource`` for changes of the collection, asking for ``expires``.

    None when the server does not offer Web Push on it; a ``SourceError`` when it
    refuses or cannot be reached.
    """
    found = await http.propfind_collection(Op.SUBSCRIBE, DISCOVER)
    if not offers_web_push(getattr(found, "tree", None)):
        return None
    body = register_body(push_resource, expires)
    headers = {"Content-Type": "application/xml; charset=utf-8"}
    answer = await http.post(Op.SUBSCRIBE, body, headers)
    return Subscription(
        location=answer.headers.get("Location"),
        expires=expires_of(answer.headers, expires),
        renewed=int(answer.status) == 200,
    )
