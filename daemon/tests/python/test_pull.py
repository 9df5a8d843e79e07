"""docker-py (the real Python SDK) pulling from and pushing to a loopback
registry through berthd.

BERTHD_HOST names the daemon, BERTH_TEST_REGISTRY the registry (seeded
with busybox:latest), BERTH_TEST_DIGEST its manifest digest; run through
`cargo test -p berth-daemon --test pull`, which starts both.
"""
import os

import docker
import pytest

REGISTRY = os.environ["BERTH_TEST_REGISTRY"]
DIGEST = os.environ["BERTH_TEST_DIGEST"]


def test_images_pull_returns_the_tagged_image(client):
    image = client.images.pull(f"{REGISTRY}/busybox", tag="latest")
    assert f"{REGISTRY}/busybox:latest" in image.tags
    assert image.id.startswith("sha256:")
    assert client.images.get(f"{REGISTRY}/busybox:latest").id == image.id


def test_low_level_pull_streams_progress_and_missing_tags_raise(client):
    lines = list(
        client.api.pull(f"{REGISTRY}/busybox", tag=DIGEST, stream=True, decode=True)
    )
    assert lines[0]["status"] == "Pulling from busybox"
    assert lines[0]["id"] == DIGEST
    assert {"status": f"Digest: {DIGEST}"} in lines
    assert lines[-1]["status"].startswith("Status: ")
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(f"{REGISTRY}/busybox", tag="nope")


def test_push_streams_the_digest(client):
    client.images.pull(f"{REGISTRY}/busybox", tag="latest")
    image = client.images.get(f"{REGISTRY}/busybox:latest")
    assert image.tag(f"{REGISTRY}/pyrepo", "v1")
    lines = list(
        client.images.push(f"{REGISTRY}/pyrepo", tag="v1", stream=True, decode=True)
    )
    assert lines[0] == {"status": f"The push refers to repository [{REGISTRY}/pyrepo]"}
    aux = [line["aux"] for line in lines if "aux" in line]
    assert aux == [{"Tag": "v1", "Digest": DIGEST, "Size": aux[0]["Size"]}]
    assert all("error" not in line for line in lines)
