"""Demo data: ``load_demo_data`` fills every panel's database with generated rows."""
