"""The private names of django that the console uses, each behind a small function of ours."""

#: Checked against the installed version by tests/test_adapters.py.
PRIVATE_NAMES = []
