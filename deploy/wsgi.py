"""Production WSGI entry: Apache mod_wsgi (``WSGIScriptAlias``) and uWSGI (``wsgi-file``) both load this file.

It selects ``console.settings_production``, which reads the secret key, hosts and
database URLs from the environment file (``/etc/data-console/console.env``): neither
server hands its own configuration's variables to ``os.environ``.  ``console/wsgi.py``
stays the development entry (runserver, mod_wsgi-express).

Touch this file to reload the code: mod_wsgi restarts its daemon processes on their
next request, and the uWSGI ini names it as ``touch-reload``.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings_production")

from console.wsgi import application  # noqa: E402, F401
