"""docker-py against berthd's container file endpoints: put_archive,
get_archive, export, diff, commit (with a config and changes).

BERTHD_HOST names the daemon; run through `cargo test -p berth-daemon
--test container_files`, which starts berthd and imports `busybox`.
"""
import io
import os
import tarfile

import docker
import pytest


@pytest.fixture
def client():
    c = docker.DockerClient(base_url=os.environ["BERTHD_HOST"], version="auto")
    yield c
    for container in c.containers.list(all=True):
        container.remove(force=True)
    c.close()


def tar_of(name, data):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_put_and_get_archive(client):
    c = client.containers.run("busybox", ["sleep", "300"], detach=True)
    assert c.put_archive("/etc", tar_of("py.txt", b"from python\n"))
    assert c.exec_run(["cat", "/etc/py.txt"]).output == b"from python\n"
    chunks, stat = c.get_archive("/etc/py.txt")
    assert stat["name"] == "py.txt"
    assert stat["size"] == 12
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        assert tar.extractfile("py.txt").read() == b"from python\n"
    with pytest.raises(docker.errors.NotFound) as err:
        c.get_archive("/no/such")
    assert "Could not find the file /no/such in container" in str(err.value)


def test_export_diff_and_commit(client):
    c = client.containers.run(
        "busybox", ["sh", "-c", "echo x > /etc/added"], detach=True
    )
    assert c.wait()["StatusCode"] == 0
    assert {"Path": "/etc/added", "Kind": 1} in c.diff()
    exported = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        assert tar.extractfile("etc/added").read() == b"x\n"
    image = c.commit(
        repository="pycommit",
        tag="1",
        message="from docker-py",
        conf={"Cmd": ["cat", "/etc/added"]},
        changes=["ENV FROM=py"],
    )
    assert "pycommit:1" in image.tags
    assert client.containers.run("pycommit:1", remove=True) == b"x\n"
    out = client.containers.run("pycommit:1", ["sh", "-c", "echo $FROM"], remove=True)
    assert out == b"py\n"
