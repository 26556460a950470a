"""Invoke collections: each task parses flags, calls into ops/, prints. No logic lives here."""

from invoke import Collection

from ops.tasks import backup, deploy, lab, provision, tuning


def namespace() -> Collection:
    ns = Collection()
    for module in (provision, deploy, backup, tuning):
        for task in module.TASKS:
            ns.add_task(task)
    ns.add_collection(Collection.from_module(lab, name="lab"))
    return ns
