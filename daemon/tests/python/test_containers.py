"""docker-py (the real Python SDK) against berthd's container endpoints.

BERTHD_HOST names the daemon; run through `cargo test -p berth-daemon
--test containers`, which starts berthd and imports a `busybox` image.
"""
import os

import docker
import pytest


@pytest.fixture
def client():
    c = docker.DockerClient(base_url=os.environ["BERTHD_HOST"], version="auto")
    yield c
    for container in c.containers.list(all=True):
        container.remove(force=True)
    c.close()


def test_run_returns_output_and_removes(client):
    out = client.containers.run("busybox", ["echo", "hello"], remove=True)
    assert out == b"hello\n"
    assert client.containers.list(all=True) == []


def test_run_failure_raises_container_error(client):
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"])
    assert err.value.exit_status == 3
    assert b"bad" in err.value.stderr


def test_detached_list_get_logs_and_wait(client):
    c = client.containers.run(
        "busybox", ["sh", "-c", "echo one; sleep 1; echo two"], detach=True, name="pyrun",
        labels={"k": "v"},
    )
    assert c.name == "pyrun"
    listed = client.containers.list(filters={"name": "pyrun"})
    assert [x.id for x in listed] == [c.id]
    assert client.containers.get("pyrun").labels == {"k": "v"}
    lines = list(c.logs(stream=True, follow=True))
    assert b"".join(lines) == b"one\ntwo\n"
    assert c.wait() == {"StatusCode": 0, "Error": None}
    c.reload()
    assert c.status == "exited"
    assert c.attrs["State"]["ExitCode"] == 0


def test_exec_run(client):
    c = client.containers.run("busybox", ["sleep", "1000"], detach=True)
    result = c.exec_run(["sh", "-c", "echo in-exec; exit 6"])
    assert result.exit_code == 6
    assert result.output == b"in-exec\n"
    code, (out, err) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
    assert (code, out, err) == (0, b"o\n", b"e\n")
    c.stop(timeout=1)
    c.reload()
    assert c.status == "exited"


def test_remove_and_not_found(client):
    c = client.containers.create("busybox", ["true"], name="gone")
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("gone")
    with pytest.raises(docker.errors.NotFound):
        client.api.inspect_container("never-was")


def test_auto_remove_detached(client):
    # Long enough for the wait to begin before the removal: a removed
    # container has no wait endpoint (404), with dockerd too.
    c = client.containers.run("busybox", ["sleep", "1"], detach=True, auto_remove=True)
    assert c.wait(condition="removed")["StatusCode"] == 0
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_update_limits_and_restart_policy(client):
    c = client.containers.run("busybox", ["sleep", "1000"], detach=True, mem_limit="32m")
    answer = c.update(mem_limit="64m", memswap_limit="128m", cpu_shares=512,
                      restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    assert answer["Warnings"] == []
    c.reload()
    host = c.attrs["HostConfig"]
    assert (host["Memory"], host["MemorySwap"]) == (64 << 20, 128 << 20)
    assert host["CpuShares"] == 512
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    with pytest.raises(docker.errors.APIError) as err:
        c.update(mem_limit="1m")
    assert err.value.status_code == 400
    assert "Minimum memory limit allowed is 6MB" in str(err.value)
    with pytest.raises(docker.errors.NotFound):
        client.api.update_container("never-was", mem_limit="64m")
