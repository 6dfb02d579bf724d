"""Legacy tables (placeholder until inspectdb models land)."""
