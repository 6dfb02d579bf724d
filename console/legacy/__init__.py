"""The older system's order-entry tables: unmanaged models over the shipped SQL schema."""
