"""The `emc` command line."""

import click


@click.group()
def main() -> None:
    """EMC Protocol: run and operate the agents of a decentralized compute network."""
