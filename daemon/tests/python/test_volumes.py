"""docker-py (the real Python SDK) against berthd's volume endpoints and
container mounts.

BERTHD_HOST names the daemon, BIND_DIR a scratch directory on the host;
run through `cargo test -p berth-daemon --test volumes`, which starts
berthd and imports a `busybox` image.
"""
import os

import docker
import pytest


@pytest.fixture
def client():
    c = docker.DockerClient(base_url=os.environ["BERTHD_HOST"], version="auto")
    yield c
    for container in c.containers.list(all=True):
        container.remove(force=True, v=True)
    for volume in c.volumes.list():
        volume.remove(force=True)
    c.close()


def test_create_list_get_remove(client):
    v = client.volumes.create("pyvol", labels={"a": "b"})
    assert v.name == "pyvol"
    assert v.attrs["Driver"] == "local"
    assert v.attrs["Labels"] == {"a": "b"}
    assert v.attrs["Mountpoint"].endswith("/volumes/pyvol/_data")
    assert [x.name for x in client.volumes.list(filters={"label": "a=b"})] == ["pyvol"]
    assert client.volumes.get("pyvol").id == "pyvol"
    v.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("pyvol")


def test_in_use_removal_is_a_conflict(client):
    client.volumes.create("busy")
    c = client.containers.create(
        "busybox", "true", volumes={"busy": {"bind": "/b", "mode": "rw"}}
    )
    with pytest.raises(docker.errors.APIError) as err:
        client.volumes.get("busy").remove()
    assert err.value.status_code == 409
    assert c.id in str(err.value)
    c.remove()
    client.volumes.get("busy").remove()


def test_volume_and_bind_mounts_with_read_only(client):
    out = client.containers.run(
        "busybox",
        ["sh", "-c", "echo py > /v/f; cat /v/f"],
        volumes={"pydata": {"bind": "/v", "mode": "rw"}},
        remove=True,
    )
    assert out == b"py\n"
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run(
            "busybox", ["touch", "/v/g"], volumes=["pydata:/v:ro"], remove=True
        )
    assert b"Read-only file system" in err.value.stderr
    host = os.path.join(os.environ["BIND_DIR"], "pyhost")
    os.makedirs(host)
    with open(os.path.join(host, "hello"), "w") as f:
        f.write("hi\n")
    out = client.containers.run(
        "busybox", ["cat", "/h/hello"], volumes={host: {"bind": "/h", "mode": "ro"}},
        remove=True,
    )
    assert out == b"hi\n"


def test_mount_objects_and_a_missing_bind_source(client):
    mounts = [
        docker.types.Mount("/t", None, type="tmpfs", tmpfs_size=1 << 20),
        docker.types.Mount("/m", "mnt", type="volume", read_only=True),
    ]
    c = client.containers.run(
        "busybox", ["sh", "-c", "grep ' /t ' /proc/mounts"], mounts=mounts, detach=True
    )
    assert c.wait()["StatusCode"] == 0
    assert b"size=1024k" in c.logs()
    c.reload()
    kinds = sorted((m["Type"], m["Destination"], m["RW"]) for m in c.attrs["Mounts"])
    assert kinds == [("tmpfs", "/t", True), ("volume", "/m", False)]
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.create(
            "busybox", mounts=[docker.types.Mount("/x", "/no/such/path", type="bind")]
        )
    assert err.value.status_code == 400
    assert "bind source path does not exist: /no/such/path" in str(err.value)


def test_prune_takes_anonymous_then_all(client):
    client.volumes.create("named")
    c = client.containers.create("busybox", "true", volumes=["/anon"])
    c.reload()
    anon = c.attrs["Mounts"][0]["Name"]
    c.remove()
    assert client.volumes.prune()["VolumesDeleted"] == [anon]
    assert client.volumes.prune(filters={"all": "true"})["VolumesDeleted"] == ["named"]
    assert client.volumes.list() == []
