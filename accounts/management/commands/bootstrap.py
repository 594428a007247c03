from django.core.management.base import BaseCommand

from accounts.services import admin_ensure
from jobs.services import demo_model_ensure


class Command(BaseCommand):
    help = "First-start set-up (idempotent): the admin account and the demo base model."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--skip-demo-model", action="store_true")

    def handle(self, *args, username: str, skip_demo_model: bool, **options):
        password = admin_ensure(username=username)
        if password is None:
            self.stdout.write(f"admin: {username} (existing account; password unchanged)")
        else:
            # Printed once; the launcher shows it to the person who started the platform.
            self.stdout.write(f"admin: {username} password: {password}")
        if not skip_demo_model:
            model = demo_model_ensure()
            self.stdout.write(f"demo model: {model.name} ({model.parameter_count:,} parameters)")
