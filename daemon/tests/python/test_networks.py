"""docker-py (the real Python SDK) against berthd's network endpoints.

The `client` fixture (conftest.py) talks to BERTHD_HOST; run through
`cargo test -p berth-daemon --test networks`, which starts berthd in a
scratch network namespace and imports a `busybox` image.
"""
import docker
import pytest


@pytest.fixture(autouse=True)
def cleanup(client):
    yield
    for container in client.containers.list(all=True):
        container.remove(force=True)
    for network in client.networks.list():
        if network.name not in ("bridge", "host", "none"):
            network.remove()


def test_create_list_get_and_remove(client):
    ipam = docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet="10.125.0.0/24", gateway="10.125.0.1")]
    )
    net = client.networks.create("pynet", driver="bridge", ipam=ipam, labels={"k": "v"})
    assert net.name == "pynet"
    got = client.networks.get(net.id)
    assert got.attrs["IPAM"]["Config"] == [{"Subnet": "10.125.0.0/24", "Gateway": "10.125.0.1"}]
    assert got.attrs["Labels"] == {"k": "v"}
    assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
    assert [n.name for n in client.networks.list(filters={"label": "k=v"})] == ["pynet"]
    with pytest.raises(docker.errors.APIError) as err:
        client.networks.create("clash", ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet="10.125.0.0/16")]))
    assert "overlaps" in str(err.value)
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("pynet")


def test_connect_and_disconnect_a_running_container(client):
    net = client.networks.create("pyconn")
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name="pyc")
    net.connect(c, aliases=["pyalias"])
    c.reload()
    endpoint = c.attrs["NetworkSettings"]["Networks"]["pyconn"]
    assert endpoint["IPAddress"]
    assert endpoint["Aliases"] == ["pyalias"]
    out = c.exec_run(["ip", "-o", "-4", "addr", "show", "eth1"]).output.decode()
    assert endpoint["IPAddress"] + "/" in out
    net.reload()
    assert [m.name for m in net.containers] == ["pyc"]
    with pytest.raises(docker.errors.APIError) as err:
        net.remove()
    assert err.value.status_code == 409
    net.disconnect(c)
    c.reload()
    assert "pyconn" not in c.attrs["NetworkSettings"]["Networks"]
    assert "eth1" not in c.exec_run(["ip", "-o", "link"]).output.decode()


def test_ports_in_attrs(client):
    c = client.containers.run(
        "busybox", ["httpd", "-f", "-p", "80", "-h", "/www"], detach=True,
        ports={"80/tcp": ("127.0.0.1", 18090)},
    )
    c.reload()
    assert c.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18090"}]}
