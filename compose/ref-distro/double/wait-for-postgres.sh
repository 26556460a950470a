#!/bin/sh
# As the service images' wait-for-postgres.sh: wait for DATABASE_URL's server, then exec "$@".
exec python3 -m double wait-for-postgres "$@"
