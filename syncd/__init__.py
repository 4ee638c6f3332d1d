"""syncd: keeps DingTalk Calendar and CalDAV calendars in agreement, both ways."""

from syncd._deferred import defer_all

defer_all()  # before anything imports redis (see syncd._deferred)

__version__ = "0.1.0"
