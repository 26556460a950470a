#!/bin/sh
# The service images' run.sh: register with Consul, then start the service (DOUBLE_ROLE).
exec python3 -m double "$DOUBLE_ROLE"
