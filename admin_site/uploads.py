"""Where an import's upload waits between preview and confirm.

mod_wsgi runs several daemon processes (and, later, several hosts), so the
confirm POST may reach a process that did not see the preview: the file is
kept in a directory every process can read (``CONSOLE_IMPORT_DIR``, a shared
mount when there are several hosts), never in process memory or a per-process
temp dir.  Uploads nobody confirmed are swept after ``CONSOLE_IMPORT_MAX_AGE``
seconds, whenever a new upload is stored and by ``manage.py sweep_uploads``.
"""

import os
import time
from pathlib import Path
from uuid import uuid4

from django.conf import settings
from import_export.tmp_storages import BaseStorage


def upload_dir():
    path = Path(getattr(settings, "CONSOLE_IMPORT_DIR", Path(settings.VAR_DIR) / "imports"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def max_age():
    return getattr(settings, "CONSOLE_IMPORT_MAX_AGE", 24 * 3600)


class SharedUploadStorage(BaseStorage):
    """import-export's temp-storage API over files in ``upload_dir()``."""

    def save(self, data):
        """Store ``data`` (bytes, or an UploadedFile streamed chunk by chunk)."""
        sweep()
        self.name = uuid4().hex
        fd = os.open(self.path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, (bytes, bytearray)):
                out.write(data)
            else:
                for chunk in data.chunks():
                    out.write(chunk)

    def read(self):
        """The stored bytes; FileNotFoundError when it expired or was already imported."""
        return self.path().read_bytes()

    def remove(self):
        self.path().unlink(missing_ok=True)

    def path(self):
        # The name comes back from the confirm form: never let it leave the directory.
        name = os.path.basename(self.name or "")
        if not name or name != self.name:
            raise FileNotFoundError(self.name)
        return upload_dir() / name


def sweep(older_than=None):
    """Delete uploads older than ``older_than`` seconds; return how many went."""
    limit = time.time() - (max_age() if older_than is None else older_than)
    removed = 0
    for path in upload_dir().iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass  # another process swept it first
    return removed
