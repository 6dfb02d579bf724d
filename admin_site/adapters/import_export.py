"""The private names of django-import-export that the console uses: none.

The resources and the admin work through its public hooks (``before_import``,
``import_row``, ``save_instance``, ``export_action``, ...).  A private name that
becomes necessary goes here, with its ``PRIVATE_NAMES`` entry.
"""

from admin_site.adapters import Private

#: Checked against the installed version by tests/test_adapters.py.
PRIVATE_NAMES: list[Private] = []
