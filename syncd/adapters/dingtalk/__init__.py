"""DingTalk calendar adapter: the async API client, its token cache, and ``DingTalkSide``.

``_wire`` is the sans-I/O request/answer format (``_errors`` classifies answers),
``_transport`` the one request path (tokens, ``x-client-token``, retries, aiohttp error
mapping), ``client`` the operations, ``side`` the ``CalendarSide`` over them.
"""

from syncd.adapters.dingtalk.client import DingTalkClient, FailedCallbacks, ListResult
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd.adapters.dingtalk.tokens import TokenCache

__all__ = ["DingTalkClient", "DingTalkSide", "FailedCallbacks", "ListResult", "TokenCache"]
