"""What an import's preview saw of the rows it updates, so that its confirm refuses rows changed since.

The preview is the import's form: the person approves the changes it shows
against the rows as they were.  The preview notes one keyed hash per row it
would update (the row's key and the stored values of the columns the file
writes), in file order, 8 bytes a row; the hashes wait beside the upload until
the confirm.  The confirm reads each row under ``SELECT … FOR UPDATE`` (SQLite:
the import's ``IMMEDIATE`` transaction) and compares: a row someone changed,
deleted or added in between is a problem naming its file row, and the import,
all or nothing, writes nothing.  This is ``admin_site.concurrency`` for files.
"""

from array import array
from pathlib import Path

from django.core.exceptions import ValidationError

from admin_site.concurrency import fingerprint

#: Beside an upload: the preview's hashes of the rows it would update.
SUFFIX = ".rows"


class RowStates:
    """The hashes of the stored rows an import updates: noted by the preview, checked by the confirm."""

    def __init__(self, noted=None):
        #: None while a preview notes; the preview's hashes while a confirm checks them.
        self.noted = noted
        self.seen = array("Q")

    @property
    def checking(self):
        return self.noted is not None

    def row_hash(self, instance, fields):
        values = tuple(getattr(instance, field.attname) for field in fields)
        return int(fingerprint((instance.pk, values)), 16)

    def visit(self, instance, fields):
        """Note the stored row an update found, or check it against the preview's (a ValidationError if changed)."""
        position = len(self.seen)
        self.seen.append(self.row_hash(instance, fields))
        if not self.checking:
            return
        if position >= len(self.noted) or self.noted[position] != self.seen[position]:
            name = instance._meta.verbose_name
            raise ValidationError(
                f"This {name} ({instance.pk}) was changed by someone else after the preview, or the rows the "
                "file updates are not those the preview showed. Nothing was imported: import the file again "
                "to preview it against the values stored now."
            )

    def finish(self):
        """At the confirm's end: the preview's rows that no update found (deleted since) are a change too."""
        return not self.checking or len(self.seen) == len(self.noted)

    def save(self, upload_path):
        """Write the preview's hashes beside the upload (``upload_path``)."""
        path = Path(f"{upload_path}{SUFFIX}")
        with path.open("wb") as out:
            self.seen.tofile(out)
        path.chmod(0o600)

    @classmethod
    def load(cls, upload_path):
        """The preview's hashes for an upload; None when there are none (an upload the preview did not note)."""
        path = Path(f"{upload_path}{SUFFIX}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        noted = array("Q")
        noted.frombytes(data[: len(data) - len(data) % noted.itemsize])
        return cls(noted)

    @staticmethod
    def remove(upload_path):
        Path(f"{upload_path}{SUFFIX}").unlink(missing_ok=True)
