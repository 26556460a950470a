"""Which backups retention removes: pure selection, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta

from ops.db.manifest import Backup, newest_first


def to_prune(backups: list[Backup], *, keep_last: int, keep_days: int,
             now: datetime) -> list[Backup]:
    """Backups beyond the newest `keep_last` of their kind AND older than `keep_days`.

    Dumps and snapshots are counted separately. The newest verified backup of each kind is
    never selected, however old; neither is anything not yet available (in progress).
    """
    cutoff = now - timedelta(days=keep_days)
    selected: list[Backup] = []
    for kind in sorted({b.kind for b in backups}):
        ordered = newest_first([b for b in backups if b.kind == kind])
        verified = next((b for b in ordered if b.verified), None)
        for backup in ordered[keep_last:]:
            if backup is verified or backup.status != "available":
                continue
            if backup.time < cutoff:
                selected.append(backup)
    return newest_first(selected)
