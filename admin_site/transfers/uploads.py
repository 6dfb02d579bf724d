"""Where an import's upload waits between preview and confirm.

mod_wsgi runs several daemon processes (and, later, several hosts), so the
confirm POST may reach a process that did not see the preview: the file is
kept in a directory every process can read (``CONSOLE_IMPORT_DIR``, a shared
mount when there are several hosts), never in process memory or a per-process
temp dir.  Uploads nobody confirmed are swept after ``CONSOLE_IMPORT_MAX_AGE``
seconds, whenever a new upload is stored and by ``manage.py sweep_uploads``.

An upload belongs to the user who sent it: its name (the token the confirm
form carries back) ends with that user's pk, and only that user can read it
back.  Anyone else's token, and any name not made here, is "no longer
available".
"""

import os
import re
import time
from pathlib import Path
from uuid import uuid4

from django.conf import settings
from import_export.tmp_storages import BaseStorage

from admin_site.transfers.records import fail_stale_transfers
from admin_site.transfers.rowstates import RowStates


def upload_dir():
    path = Path(getattr(settings, "CONSOLE_IMPORT_DIR", Path(settings.VAR_DIR) / "imports"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def export_dir(create=True):
    """Where finished background exports wait for download: ``CONSOLE_EXPORT_DIR``, by default beside the uploads."""
    path = Path(getattr(settings, "CONSOLE_EXPORT_DIR", None) or upload_dir().parent / "exports")
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def max_age():
    return getattr(settings, "CONSOLE_IMPORT_MAX_AGE", 24 * 3600)


#: A stored upload's name: a random token, then the pk of the user it belongs to.
NAME = re.compile(r"[0-9a-f]{32}-(?P<owner>[0-9]{1,20})")


class SharedUploadStorage(BaseStorage):
    """import-export's temp-storage API over files in ``upload_dir()``, each owned by one user (``owner``, a pk)."""

    def __init__(self, owner=None, **kwargs):
        super().__init__(**kwargs)
        self.owner = owner

    def save(self, data):
        """Store ``data`` (bytes, or an UploadedFile streamed chunk by chunk)."""
        sweep()
        if self.owner is None:
            raise ValueError("An upload needs an owner.")
        self.name = f"{uuid4().hex}-{int(self.owner)}"
        fd = os.open(self.path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, (bytes, bytearray)):
                out.write(data)
            else:
                for chunk in data.chunks():
                    out.write(chunk)

    def read(self):
        """The stored file's path (formats read it a chunk at a time); FileNotFoundError when it is gone."""
        path = self.path()
        if not path.is_file():
            raise FileNotFoundError(self.name)
        return path

    def remove(self):
        """Delete the upload and what its preview noted beside it (``rowstates``)."""
        try:
            path = self.path()
        except FileNotFoundError:
            return  # not a name of ours: nothing to remove
        path.unlink(missing_ok=True)
        RowStates.remove(path)

    def path(self):
        """Where the upload is; FileNotFoundError for a name not made here or another user's upload."""
        # The name comes back from the confirm form: never let it leave the directory or reach another's file.
        match = NAME.fullmatch(self.name or "")
        if match is None or self.owner is None or match["owner"] != str(int(self.owner)):
            raise FileNotFoundError(self.name)
        return upload_dir() / match.group()


def sweep(older_than=None):
    """Delete uploads and background exports older than ``older_than`` seconds; return how many went.

    Transfer records that a dead process left running are marked failed too
    (``admin_site.transfers.records.fail_stale_transfers``).
    """
    fail_stale_transfers()
    limit = time.time() - (max_age() if older_than is None else older_than)
    removed = 0
    exports = export_dir(create=False)  # made by the first background export, by the worker
    for path in [*upload_dir().iterdir(), *(exports.iterdir() if exports.is_dir() else ())]:
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another process swept it first
    return removed
