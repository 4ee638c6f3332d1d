"""DingTalk calendar adapter: the async API client, its token cache, and ``DingTalkSide``.

``_wire`` is the sans-I/O request/answer format, ``_transport`` the one request path
(tokens, ``x-client-token``, retries, aiohttp error mapping), ``client`` the operations.
"""

from syncd.adapters.dingtalk.client import DingTalkClient, FailedCallbacks, ListResult
from syncd.adapters.dingtalk.tokens import TokenCache

__all__ = ["DingTalkClient", "FailedCallbacks", "ListResult", "TokenCache"]
