"""Worker heartbeat: each Celery worker reports itself to the database every few seconds.

The database, not Redis, is what the web side reads: it survives a Redis restart, and the same
heartbeat will carry job leases (a job whose worker stops beating is requeued by the reaper).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

from .gpus import detect_gpus

logger = logging.getLogger(__name__)
_stop = threading.Event()


def _describe(consumer) -> dict:
    queues = sorted(consumer.app.amqp.queues.consume_from or consumer.app.amqp.queues)
    controller = getattr(consumer, "controller", None)
    return {
        "hostname": consumer.hostname,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "gpus": detect_gpus(),
        "concurrency": getattr(controller, "concurrency", 1) or 1,
    }


def _beat_forever(info: dict) -> None:
    from .services import worker_heartbeat

    interval = settings.HEARTH_WORKER_HEARTBEAT_SECONDS
    first = True
    while True:
        try:
            close_old_connections()
            worker_heartbeat(started=first, **info)
            first = False
        except Exception:  # a database hiccup must not kill the worker; the next beat retries
            logger.exception("worker heartbeat failed")
        if _stop.wait(interval):
            return


def _probe_capabilities(info: dict) -> None:
    """Fill info["capabilities"] (the next heartbeat carries it); a failed probe says why."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "jobs.engine.capabilities"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
            cwd=settings.BASE_DIR,
        ).stdout
        info["capabilities"] = json.loads(out.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
        logger.exception("capability probe failed")
        info["capabilities"] = {"error": f"capability probe failed: {exc}"}


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    info = _describe(sender)
    info["capabilities"] = {}
    if "gpu" in info["queues"]:
        threading.Thread(target=_probe_capabilities, args=(info,), daemon=True).start()
    _stop.clear()
    threading.Thread(
        target=_beat_forever, args=(info,), name="hearth-heartbeat", daemon=True
    ).start()
    logger.info(
        "heartbeat started for %s (queues %s, %d GPUs)",
        info["hostname"],
        info["queues"],
        len(info["gpus"]),
    )


@worker_shutdown.connect
def _stop_heartbeat(sender=None, **kwargs) -> None:
    from .services import worker_stopped

    _stop.set()
    try:
        close_old_connections()
        worker_stopped(hostname=sender.hostname)
    except Exception:
        logger.exception("could not mark worker stopped")
