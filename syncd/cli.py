"""The ``syncd`` command line."""

import click


@click.group()
def main() -> None:
    """syncd: DingTalk Calendar <-> CalDAV."""
