"""The environment's host over SSH (Fabric): connecting, facts, Docker, system settings."""
