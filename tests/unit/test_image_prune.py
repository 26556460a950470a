"""Which images a deploy removes: those only pruned releases used. Pure."""

from __future__ import annotations

from ops.stack import prune

COMPOSE = """services:
  referencedata:
    image: openlmis/referencedata:${OL_REFERENCEDATA_VERSION}
  consul:
    image: gliderlabs/consul-server
  service-configuration:
    build:
      context: ./config
"""


def release_files(release_id: str, version: str) -> str:
    mark = "\n@@ops-file "
    return (f"{mark}{release_id}/.env\nOL_REFERENCEDATA_VERSION={version}\n"
            f"{mark}{release_id}/config/Dockerfile\nFROM alpine:3.11\nCOPY . /config\n"
            f"{mark}{release_id}/docker-compose.yml\n{COMPOSE}")


def test_a_release_s_images_are_read_from_its_own_files() -> None:
    output = (release_files("old-1", "15.3.0") + release_files("kept-2", "15.4.0")
              + "\n@@ops-file images\nopenlmis/referencedata:15.3.0\n"
              "openlmis/referencedata:15.4.0\ngliderlabs/consul-server:latest\n<none>:<none>\n")
    needs, present = prune.parse(output)
    assert needs["old-1"] == ["alpine:3.11", "gliderlabs/consul-server",
                              "openlmis/referencedata:15.3.0"]
    assert "openlmis/referencedata:15.4.0" in needs["kept-2"]
    assert "<none>:<none>" not in present and len(present) == 3
    changes = prune.plan(needs, ["old-1"], present)
    assert [c.line() for c in changes] == [
        "- image openlmis/referencedata:15.3.0: no kept release uses it"]


def test_an_image_a_kept_release_uses_is_never_removed() -> None:
    needs = {"new": ["a:2", "shared"], "kept": ["a:1"], "old": ["a:1", "a:0", "shared:latest",
                                                                 "gone:1"]}
    present = {"a:0", "a:1", "a:2", "shared:latest"}
    assert [c.payload.image for c in prune.plan(needs, ["old"], present)] == ["a:0"]
    assert prune.plan(needs, [], present) == []
    assert prune.canonical("registry:5000/x") == "registry:5000/x:latest"
    assert prune.canonical("x@sha256:ab") == "x@sha256:ab"
