"""URLs: the console home at ``/`` and its login, and one admin panel per database at ``/<alias>/``."""

from django.urls import path

from admin_site.sites import all_sites
from admin_site.views import console_login, home

urlpatterns = [path("", home, name="console-home"), path("login/", console_login, name="console-login")]
urlpatterns += [path(f"{alias}/", site.urls) for alias, site in all_sites().items()]
