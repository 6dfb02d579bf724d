"""WSGI entry point (Apache mod_wsgi, mod_wsgi-express, uWSGI)."""

import os
import sys
from pathlib import Path

# routers.py and admin_site/ sit at the repository root, beside console/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
