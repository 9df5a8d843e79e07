"""docker-py (the real Python SDK) against berthd's image endpoints.

BERTHD_HOST names the daemon, BERTH_TEST_TMP a scratch directory removed
with it; run through `cargo test -p berth-daemon --test images`, which
starts berthd.
"""
import io
import tarfile

import docker
import pytest


def busybox_rootfs():
    """A root file system tar: /bin/busybox plus applet links."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "ls", "echo"):
            link = tarfile.TarInfo("bin/" + applet)
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return out.getvalue()


@pytest.fixture
def image_id(client):
    result = client.api.import_image_from_data(
        busybox_rootfs(), repository="pybox", tag="v1", changes=['CMD ["/bin/sh"]']
    )
    image_id = [line for line in result.splitlines() if "sha256:" in line]
    assert image_id, result
    yield client.images.get("pybox:v1").id
    for image in client.images.list():
        client.images.remove(image.id, force=True)


def test_list_and_get(client, image_id):
    images = client.images.list()
    assert [i.id for i in images] == [image_id]
    assert images[0].tags == ["pybox:v1"]
    assert client.images.list(name="pybox") != []
    assert client.images.list(name="other") == []
    image = client.images.get("pybox:v1")
    assert image.id == image_id
    assert image.short_id == image_id[:19]
    assert image.attrs["Config"]["Cmd"] == ["/bin/sh"]
    assert image.labels == {}
    assert client.info()["Images"] == 1


def test_tag_history_and_remove(client, image_id):
    image = client.images.get(image_id)
    assert image.tag("pybox", "v2") is True
    assert sorted(client.images.get(image_id).tags) == ["pybox:v1", "pybox:v2"]
    history = image.history()
    assert history[0]["Id"] == image_id
    assert history[0]["Comment"] == "Imported from -"
    client.images.remove("pybox:v2")
    assert client.images.get(image_id).tags == ["pybox:v1"]


def test_save_and_load_round_trip(client, image_id):
    data = b"".join(client.images.get("pybox:v1").save(named=True))
    client.images.remove("pybox:v1")
    assert client.images.list() == []
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [image_id]
    assert loaded[0].tags == ["pybox:v1"]


def test_errors(client):
    with pytest.raises(docker.errors.ImageNotFound) as caught:
        client.images.get("missing:v1")
    assert "No such image: missing:v1" in str(caught.value)
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.remove("missing")
    with pytest.raises(docker.errors.APIError) as caught:
        client.images.get("Bad")
    assert caught.value.status_code == 400
    assert "invalid reference format" in str(caught.value)
