"""Which Consul registrations a deploy removes: those recreated containers left behind."""

from __future__ import annotations

import pytest

from ops.stack import registrations

pytestmark = pytest.mark.unit


def instance(service_id: str, address: str, created: int) -> dict:
    return {"Service": {"ID": service_id, "Address": address, "CreateIndex": created}}


def test_the_newest_instance_of_each_service_on_a_running_container_stays() -> None:
    instances = {
        # recreated: the old instance's address now belongs to another container
        "referencedata": [instance("new-r", "10.0.0.9", 40), instance("old-r", "10.0.0.5", 7)],
        "auth": [instance("a", "10.0.0.6", 8)],  # not recreated
        "notification": [instance("gone-n", "10.0.0.4", 9)],  # its container went, none new yet
    }
    assert registrations.stale(instances, {"10.0.0.5", "10.0.0.6", "10.0.0.9"}) == [
        "old-r", "gone-n"]
    assert registrations.stale({"auth": [instance("a", "10.0.0.6", 8)]}, {"10.0.0.6"}) == []


def test_the_host_answers_are_read_line_by_line() -> None:
    out = ('instances\treferencedata\t[{"Service": {"ID": "r", "Address": "10.0.0.9"}}]\n'
           "instances\tauth\tcurl: (7) Failed to connect\n"
           "address\t10.0.0.9\naddress\t\n")
    instances, addresses = registrations._parse(out)
    assert list(instances) == ["referencedata"] and addresses == {"10.0.0.9"}
