"""WSGI entry point of the e2e server: the console's application, plus the answering daemon's PID.

The tests prove that an import's preview and its confirm may be answered by
different daemon processes; the ``X-Console-Pid`` header says which one answered.
Static files, served by Apache itself, never carry it.
"""

import os

from console.wsgi import application as console_application


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Console-Pid", str(os.getpid()))], exc_info)

    return console_application(environ, start)
