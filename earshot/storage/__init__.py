"""Storage: the engine, sessions and migrations (db.py), the tables (models.py) and the
disk spool used while the database is down."""
