"""Invoke collections: each task parses flags, calls into ops/, prints. No logic lives here.

Tasks import their backends (boto3, Fabric, the Docker SDK, psycopg) inside their bodies, so
`inv --list` and every task start without paying for the others' imports.
"""

from invoke import Collection

from ops.tasks import access, backup, deploy, doctor, lab, provision, tuning


def namespace() -> Collection:
    ns = Collection()
    for module in (doctor, provision, deploy, backup, tuning, access):
        for task in module.TASKS:
            ns.add_task(task)
    ns.add_collection(Collection.from_module(lab, name="lab"))
    return ns
