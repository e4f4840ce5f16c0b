"""`clevertap-consumer`: the service and its tools, one subcommand each.

Each subcommand lives in a module of its own and is registered here; importing a subcommand's
module must stay cheap, so heavy imports happen inside the command functions.
"""

from __future__ import annotations

import click

from .. import __version__
from .check_config import check_config
from .delete_users import delete_users
from .dlq import dlq
from .fake_clevertap import fake_clevertap
from .produce import produce
from .replay import replay
from .run import run
from .sample_events import sample_events
from .transform import transform_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="clevertap-consumer")
def main() -> None:
    """Move analytics events from Kafka into CleverTap, at least once."""


main.add_command(check_config)
main.add_command(delete_users)
main.add_command(dlq)
main.add_command(fake_clevertap)
main.add_command(produce)
main.add_command(replay)
main.add_command(run)
main.add_command(sample_events)
main.add_command(transform_command)
