"""``manage.py serve``: the console under Apache + mod_wsgi-express in daemon mode, as ``make run`` starts it."""

import os
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from admin_site.express import REPO, Unavailable, serve, start_worker, stop_worker


class Command(BaseCommand):
    help = "Serve the console with mod_wsgi-express (daemon mode); Django's development server if Apache is missing."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--processes", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)

    def handle(self, *args, host, port, processes, threads, **options):
        try:
            serve(host, port, processes, threads)
        except Unavailable as reason:
            self.stdout.write(f"NOTE: {reason}; serving with Django's development server instead.")
            self.stdout.flush()
            os.chdir(REPO)
            worker = start_worker(sys.executable, REPO, os.environ.copy())
            self.stdout.write(f"Background worker (big imports and exports): manage.py db_worker, pid {worker.pid}.")
            try:
                call_command("runserver", f"{host}:{port}", use_reloader=False)
            finally:
                stop_worker(worker)
