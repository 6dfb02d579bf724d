"""Create the first console login: a superuser with a generated password."""

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand

from admin_site.conf import panel_apps


class Command(BaseCommand):
    help = "Create a superuser who may enter every panel and print its login (once)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument(
            "--password-file",
            help="Also write the login to this file (mode 0600), so later runs can show it again.",
        )

    def handle(self, *args, username, email, password_file=None, **options):
        alias = panel_apps(settings.CONSOLE_DATABASES)["auth"][0]
        User = get_user_model()
        users = User._default_manager.db_manager(alias)
        if users.filter(username=username).exists():
            saved = ""
            if password_file:
                try:
                    with open(password_file) as f:
                        saved = f.read().strip()
                except FileNotFoundError:
                    pass
            self.stdout.write(saved or f"Login '{username}' exists already; its password is unchanged.")
            return
        password = secrets.token_urlsafe(12)
        users.create_superuser(username=username, email=email, password=password)
        line = f"Login: {username} / password: {password}"
        if password_file:
            with open(password_file, "w", opener=lambda p, f: os.open(p, f, 0o600)) as f:
                f.write(line + "\n")
        self.stdout.write(self.style.SUCCESS(line))
