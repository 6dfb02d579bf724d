"""Big-table changelists: counts that never scan, pages past them, searches through the index."""
