"""The Data Console Django project: settings, URLs, WSGI and the domain apps."""

import pymysql

# Django's MySQL backend imports MySQLdb; PyMySQL stands in for it (pure
# Python, no client library to compile).  PyMySQL >= 1.1.3 reports a
# mysqlclient-compatible version, so no version patching is needed.
pymysql.install_as_MySQLdb()
