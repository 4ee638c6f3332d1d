"""adapters/dingtalk."""
