"""Database operations: sizing, parameter tuning, backups."""
