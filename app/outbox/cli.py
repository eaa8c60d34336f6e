"""`flask worker`: the one process that delivers every outbox (DESIGN §1, §10)."""

import json
import logging
import signal
import threading

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import OperationalError

from app.cache import cache
from app.clock import now
from app.extensions import db
from app.invalidation import services as invalidation
from app.mail import delivery as mail_delivery
from app.oauth import backchannel


@click.command("worker")
@click.option("--interval", type=click.FloatRange(0.05, 60), default=0.25, show_default=True,
              help="Seconds between looks at the outbox.")  # fmt: skip
@click.option("--once", is_flag=True, help="Deliver what is due, then exit.")
@with_appcontext
def worker_command(interval: float, once: bool) -> None:
    """Deliver the outboxes: back-channel logouts and mail (retried with backoff), and the cache invalidations Redis
    missed."""
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    click.echo(json.dumps({"worker": "started", "interval_seconds": interval}))
    while not stop.is_set():
        try:
            backchannel.deliver_due(now())
            mail_delivery.deliver_due(now())
            # Every loop: an invalidation no instance could write reaches Redis within one interval of its return.
            invalidation.replay_pending(cache())
        except OperationalError:  # the database is away: nothing is lost, try again at the next tick
            db.session.rollback()
            logging.getLogger("gatehouse.backchannel").warning("database unavailable; retrying")
        if once:
            break
        stop.wait(interval)


def init_cli(app) -> None:
    app.cli.add_command(worker_command)
