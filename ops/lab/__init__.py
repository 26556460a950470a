"""The embedded local lab: an AWS API emulator, SSH hosts and a PostgreSQL, on one machine."""
