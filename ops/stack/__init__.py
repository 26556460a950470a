"""A release of a compose stack on the host: settings, release dirs, lock, audit, health."""
