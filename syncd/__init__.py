"""syncd: keeps DingTalk Calendar and CalDAV calendars in agreement, both ways."""

__version__ = "0.1.0"
