"""Bring the lab up, take it down, say what runs — and bind emulated resources to stand-ins.

Binding is what lets commands chain as on AWS: the EC2 instance that `provision` creates in the
emulator is served by a lab host made when it is launched (and removed when it is terminated),
every RDS instance by the lab's PostgreSQL, and S3 by the emulator itself. Lookups
(`instance_host`, `running_database`) start nothing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import docker
import docker.errors

from ops import console
from ops.errors import OpsError
from ops.lab import ca, database, hosts, images
from ops.lab.database import ADMIN, DATABASE, MASTER
from ops.lab.emulator import Emulator
from ops.lab.hosts import LabHost
from ops.lab.metadata import MetadataService
from ops.lab.state import LABEL, LabState

if TYPE_CHECKING:
    import psycopg

DB_HOST = "db"
DB_PASSWORD_SECRET = "db_master_password"
DB_ADMIN_SECRET = "db_admin_password"  # the control plane's (rdsadmin), never the toolkit's
DB_APP_SECRET = "db_app_password"  # the stack's own role's, which deploy sets
# What deploy replaces openlmis-auth's bootstrap credentials with (ref-distro on the double).
STACK_SECRETS = ("admin_password", "trusted_client_secret")


@dataclass(frozen=True)
class Lab:
    state: LabState
    client: docker.DockerClient

    @classmethod
    def connect(cls, state: LabState | None = None) -> Lab:
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException:
            raise OpsError("no Docker engine is reachable",
                           hint="run: make setup (installs and starts one)") from None
        return cls(state or LabState.current(), client)

    # --- up / down / status ------------------------------------------------------------

    def up(self) -> dict[str, str]:
        """Network, emulator, images, the database host, and every lab host running with its
        key trusted. Fast when already up."""
        gateway = self._network()
        url = Emulator(self.state).start(gateway)
        console.ok(f"AWS emulator at {url}")
        metadata = MetadataService(self.state).start(gateway)
        console.ok(f"instance metadata service at {metadata}")
        db = self.database()
        console.ok(f"PostgreSQL {database.DATABASE} at {db.address}:5432")
        for secret in (DB_APP_SECRET, *STACK_SECRETS):
            self.state.secret(secret)
        for container in hosts.listed(self.client, self.state):
            if container.labels.get(f"{LABEL}.role") == "host":
                name = (container.name or "").removeprefix(f"{self.state.name}-")
                stopped = container.status != "running"
                hosts.start(self.client, self.state, name, hosts.image_id(container), role="host")
                if stopped:
                    console.ok(f"started lab host {container.name} again")
        return {"emulator": url, "metadata": metadata, "database": db.address}

    def down(self, *, images_too: bool = False) -> list[str]:
        """Remove every container, the network, the emulator and the lab's files."""
        removed = []
        for container in hosts.listed(self.client, self.state):
            hosts.remove(container)
            removed.append(f"container {container.name}")
        if Emulator(self.state).stop():
            removed.append("AWS emulator")
        if MetadataService(self.state).stop():
            removed.append("instance metadata service")
        try:
            self.client.networks.get(self.state.network).remove()
            removed.append(f"network {self.state.network}")
        except docker.errors.NotFound:
            pass
        if images_too:
            removed += [f"image {name}" for name in images.remove_all(self.client)]
        if self.state.dir.exists():
            shutil.rmtree(self.state.dir)
            removed.append(f"lab files in {self.state.dir}")
        return removed

    def status(self) -> list[dict[str, str]]:
        rows = [{"name": "AWS emulator", "state": "running" if (u := Emulator(self.state).url())
                 else "stopped", "address": u or ""}]
        metadata = MetadataService(self.state)
        rows.append({"name": "instance metadata service",
                     "state": "running" if (m := metadata.url()) else "stopped",
                     "address": m or ""})
        for container in hosts.listed(self.client, self.state):
            networks = container.attrs["NetworkSettings"]["Networks"]
            address = networks.get(self.state.network, {}).get("IPAddress", "")
            role = container.labels.get(f"{LABEL}.role", "")
            rows.append({"name": container.name or "", "state": f"{container.status} ({role})",
                         "address": address})
        return rows

    # --- stand-ins -----------------------------------------------------------------------

    def database(self) -> LabHost:
        """The PostgreSQL host, started and set up (as RDS hands one over) when needed; one
        set up another way, by an earlier version, is made again."""
        image = images.ensure(self.client, "postgres")
        self._network()
        container = hosts.find(self.client, self.state, DB_HOST)
        if container is not None and hosts.image_id(container) != self.client.images.get(image).id:
            console.step("the lab database's image changed: making its host again")
            hosts.remove(container)
            self.state.write("database", {})
        host = hosts.start(self.client, self.state, DB_HOST, image, role="database")
        if self.state.read("database").get("setup") != database.SETUP:
            container = hosts.find(self.client, self.state, DB_HOST)
            assert container is not None
            database.configure(container, self.state, host.address,
                               self.state.secret(DB_PASSWORD_SECRET),
                               self.state.secret(DB_ADMIN_SECRET))
            self.state.write("database", {"setup": database.SETUP, "address": host.address})
        return host

    def database_tls(self) -> dict[str, str]:
        """libpq settings that verify the lab PostgreSQL's certificate (as on RDS)."""
        return {"sslmode": "verify-full", "sslrootcert": str(ca.certificate(self.state))}

    def db_connection(self, dbname: str = DATABASE, *, admin: bool = False,
                      **options: Any) -> psycopg.Connection:
        """A connection (autocommit) to the running lab PostgreSQL over verified TLS: as the
        master, or as `rdsadmin`, the control plane's; `options` override libpq's settings."""
        import psycopg  # only the lab's database work pays for it

        user, secret = (ADMIN, DB_ADMIN_SECRET) if admin else (MASTER, DB_PASSWORD_SECRET)
        return psycopg.connect(**{
            "host": self.running_database().address, "dbname": dbname, "user": user,
            "password": self.state.read("secrets").get(secret, ""), "autocommit": True,
            **self.database_tls(), **options})

    def host(self, name: str, *, docker_ready: bool = False) -> LabHost:
        """A host by name: bare (as EC2 gives it) or with Docker installed (for shared tests)."""
        image = images.ensure(self.client, "docker" if docker_ready else "base")
        self._network()
        return hosts.start(self.client, self.state, name, image, role="host")

    def running_database(self) -> LabHost:
        """The PostgreSQL host as it runs now; OpsError when it does not. Starts nothing."""
        if self.state.read("database").get("setup") != database.SETUP:
            raise OpsError("the lab's PostgreSQL has not been set up", hint="run: inv lab.up")
        return hosts.lookup(self.client, self.state, DB_HOST, "its PostgreSQL")

    def database_free_bytes(self) -> int:
        """Free bytes where the lab PostgreSQL keeps its data (as RDS's FreeStorageSpace)."""
        self.running_database()
        container = hosts.find(self.client, self.state, DB_HOST)
        assert container is not None
        code, output = container.exec_run(["df", "-B1", "--output=avail", "/var/lib/postgresql"])
        out = cast(bytes, output)
        if code:
            raise OpsError(f"cannot read the lab PostgreSQL's free storage: {out.decode()}")
        return int(out.split()[-1])

    def serve_instance(self, instance_id: str) -> LabHost:
        """Make (bare, as EC2 gives it) and start the lab host serving an emulated instance."""
        return self.host(instance_id)

    def instance_host(self, instance_id: str) -> LabHost:
        """The running lab host serving an emulated instance. Starts nothing."""
        return hosts.lookup(self.client, self.state, instance_id, f"instance {instance_id}")

    def stop_instance(self, instance_id: str) -> None:
        """Shut the host serving an instance down, as EC2 stops one (its disk kept)."""
        self._container(instance_id).stop(timeout=30)

    def start_instance(self, instance_id: str) -> None:
        """Boot a stopped instance's host again."""
        self._container(instance_id).start()

    def _container(self, instance_id: str) -> Any:
        container = hosts.find(self.client, self.state, instance_id)
        if container is None:
            raise OpsError(f"the lab has no host for instance {instance_id}")
        return container

    def retire_instance(self, instance_id: str) -> None:
        """Remove the host of a terminated instance, its disk with it."""
        if container := hosts.find(self.client, self.state, instance_id):
            hosts.remove(container)

    def gateway(self) -> str | None:
        """The lab network's gateway (this machine, as the lab hosts see it); None without the
        network. Makes nothing."""
        try:
            network = self.client.networks.get(self.state.network)
        except docker.errors.NotFound:
            return None
        return network.attrs["IPAM"]["Config"][0]["Gateway"]

    def _network(self) -> str:
        """The lab's own bridge network; returns its gateway, where the emulator listens."""
        try:
            network = self.client.networks.get(self.state.network)
        except docker.errors.NotFound:
            network = self.client.networks.create(self.state.network, driver="bridge",
                                                  labels={LABEL: self.state.name})
            network.reload()
        return network.attrs["IPAM"]["Config"][0]["Gateway"]
