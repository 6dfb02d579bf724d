"""Settings of the changelist bench's HTTP server: the e2e server's production-like settings, the bench's URLs."""

from tests.e2e.server_settings import *  # noqa: F403

ROOT_URLCONF = "bench.changelist_site"
