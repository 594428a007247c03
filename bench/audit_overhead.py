"""What auditing costs: per `record()` call and per request, on SQLite and (when DATABASE_URL is
set) PostgreSQL.

    .venv/bin/python bench/audit_overhead.py [--requests 400] [--records 2000] [--rounds 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/audit_overhead.py

Each backend runs in its own process on a throwaway test database (config.settings.test; for
PostgreSQL `test_<name>` is created and dropped). Measured:

- `record()` on its own (its own transaction: lock the chain head, insert, move the head), and
  inside a transaction that commits a change anyway (a service's atomic block), against the
  same transaction without it;
- a denial inside a transaction (deferred, written when the scope closes);
- requests through Django's test client and the whole middleware stack to two views that do the
  same query, one of them also recording an event: the difference is the per-request overhead.

Medians of --rounds rounds, arms interleaved so that drift hits both alike. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# -- the views the requests go to (this module is the URLconf in the child process) ------------
def _plain(request):
    from django.contrib.auth import get_user_model
    from django.http import HttpResponse

    get_user_model().objects.filter(pk=request.user.pk).exists()
    return HttpResponse("ok")


def _audited(request):
    from django.contrib.auth import get_user_model
    from django.http import HttpResponse

    from audit.services import record

    get_user_model().objects.filter(pk=request.user.pk).exists()
    record(action="bench.read", actor=request.user, object_type="bench", object_id=1)
    return HttpResponse("ok")


def _denied(request):
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.http import HttpResponseForbidden

    from audit.services import record_denied

    with transaction.atomic():
        record_denied(actor=request.user, model=get_user_model(), action="bench")
    return HttpResponseForbidden("no")


def _urlpatterns():
    from django.urls import path

    return [path("plain/", _plain), path("audited/", _audited), path("denied/", _denied)]


def per_call_us(n: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        work()
    return (time.perf_counter() - start) / n * 1e6


def median_of(rounds: int, n: int, arms: dict[str, Callable[[], object]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(rounds):
        for name, work in arms.items():
            samples[name].append(per_call_us(n, work))
    return {name: statistics.median(values) for name, values in samples.items()}


def child(args: argparse.Namespace) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from audit.models import AuditEvent
    from audit.services import audit_verify, record

    setup_test_environment()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # the 403s are on purpose
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.ROOT_URLCONF = __name__
    sys.modules[__name__].urlpatterns = _urlpatterns()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        vendor = f"{connection.vendor} {connection.Database.__name__}"
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                vendor += f" (server {cursor.fetchone()[0]})"
        print(f"\n== {vendor} ==")
        user = get_user_model().objects.create_user("bench")  # force_login: no password

        users = get_user_model().objects.filter(pk=user.pk)

        def in_transaction() -> None:
            with transaction.atomic():
                users.update(last_login=timezone.now())
                record(action="bench.in_txn", actor=user)

        def change_only() -> None:
            with transaction.atomic():  # the same change, committed, without its audit event
                users.update(last_login=timezone.now())

        def denial() -> None:
            from audit.services import close_denial_scope, open_denial_scope, record_denied

            scope = open_denial_scope()
            try:
                with transaction.atomic():
                    record_denied(actor=user, model=type(user), action="bench")
            finally:
                close_denial_scope(scope)

        calls = median_of(
            args.rounds,
            args.records // args.rounds,
            {
                "record() alone (own transaction)": lambda: record(action="bench.alone"),
                "a change in a transaction": change_only,
                "a change + record() in a transaction": in_transaction,
                "denial in a transaction (deferred)": denial,
            },
        )
        for name, us in calls.items():
            print(f"  {name:<42} {us:8.1f} µs")
        inner = calls["a change + record() in a transaction"] - calls["a change in a transaction"]
        print(f"  {'=> record() inside a transaction':<42} {inner:8.1f} µs")

        client = Client()
        client.force_login(user)
        for url in ("/plain/", "/audited/", "/denied/"):  # warm up
            client.get(url)
        requests = median_of(
            args.rounds,
            args.requests // args.rounds,
            {
                "GET without audit": lambda: client.get("/plain/"),
                "GET recording one event": lambda: client.get("/audited/"),
                "GET denied (deferred denial)": lambda: client.get("/denied/"),
            },
        )
        for name, us in requests.items():
            print(f"  {name:<42} {us / 1000:8.3f} ms/request")
        overhead = requests["GET recording one event"] - requests["GET without audit"]
        print(f"  {'=> audit overhead per request':<42} {overhead / 1000:8.3f} ms")

        start = time.perf_counter()
        result = audit_verify()
        elapsed = time.perf_counter() - start
        count = AuditEvent.objects.count()
        print(
            f"  audit_verify: {result.checked} of {count} events in {elapsed:.2f} s "
            f"({result.checked / elapsed:,.0f} events/s), ok={result.ok}"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    backends = [{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}]
    if os.environ.get("DATABASE_URL"):
        backends.append(dict(os.environ))
    forwarded = [a for a in sys.argv[1:] if a != "--child"]
    for env in backends:
        subprocess.run(
            [sys.executable, __file__, "--child", *forwarded], env=env, cwd=ROOT, check=True
        )


if __name__ == "__main__":
    main()
