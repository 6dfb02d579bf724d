"""Delete import uploads that were previewed but never confirmed; fail transfer records a dead process left running."""

from django.core.management import BaseCommand

from admin_site.transfers.records import fail_stale_transfers, transfer_stale_after
from admin_site.transfers.uploads import max_age, sweep, upload_dir


class Command(BaseCommand):
    help = (
        "Delete abandoned import uploads (older than CONSOLE_IMPORT_MAX_AGE seconds by default) and mark transfer "
        "records still running after CONSOLE_TRANSFER_STALE_AFTER seconds as failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=None, help="Seconds (default: CONSOLE_IMPORT_MAX_AGE).")

    def handle(self, *args, older_than=None, **options):
        failed = fail_stale_transfers()  # sweep() does it too; counted here to report it
        removed = sweep(older_than)
        age = max_age() if older_than is None else older_than
        self.stdout.write(f"Removed {removed} upload(s) older than {age}s from {upload_dir()}.")
        self.stdout.write(
            f"Marked {failed} transfer record(s) still running after {transfer_stale_after()}s as failed."
        )
