"""The stack on a Docker Swarm of several nodes (host.count > 1): forming the swarm, and
running a release on it as a stack."""
