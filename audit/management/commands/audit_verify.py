"""`manage.py audit_verify [--archives] [--json]`: check the audit trail's hash chain.

Exit status 0 when it verifies, 1 at the first broken link (printed).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain and report the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--archives",
            action="store_true",
            help="Also decrypt every retention archive and check it against its checkpoint.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: object, **options: object) -> None:
        result = audit_verify(archives=bool(options["archives"]))
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        else:
            self._print(result)
        if not result.ok:
            raise CommandError("the audit trail does not verify", returncode=1)

    def _print(self, result) -> None:
        broken = result.broken
        if broken is not None:
            event = f"event id {broken.event_id}" if broken.event_id is not None else "no event"
            self.stdout.write(
                f"BROKEN at position {broken.position} ({event}): {broken.reason}: {broken.message}"
            )
        for archive in result.archives:
            status = "ok" if archive.ok else f"BROKEN: {archive.message}"
            self.stdout.write(
                f"archive {archive.archive_name} (positions {archive.first_position}–"
                f"{archive.last_position}, {archive.checked} events): {status}"
            )
        self.stdout.write(
            f"{result.checked} events checked from position {result.start_position}; "
            f"chain head {result.head_position} {result.head_hash}"
        )
        if result.ok:
            self.stdout.write(self.style.SUCCESS("OK: the audit trail verifies."))
