"""docker-py (the real Python SDK) against berthd's system endpoints.

BERTHD_HOST names the daemon, e.g. unix:///tmp/x/berth.sock; run through
`cargo test -p berth-daemon --test docker_py`, which starts berthd.
"""
import time

import docker
import pytest


def test_version(client):
    v = client.version()
    assert v["ApiVersion"] == "1.47"
    assert v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux"
    assert v["Components"][0]["Name"] == "Engine"
    # version="auto" negotiated from GET /version; every later call is versioned.
    assert client.api.api_version == "1.47"


def test_ping(client):
    assert client.ping() is True
    assert client.api.ping() is True


def test_info(client):
    info = client.info()
    assert info["OSType"] == "linux"
    assert info["Images"] == 0
    assert info["Containers"] == 0
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["Driver"] == "overlay2"


def test_df(client):
    df = client.df()
    assert df["Images"] == []
    assert df["Containers"] == []
    assert df["Volumes"] == []


def test_events_in_a_past_window_end(client):
    now = int(time.time())
    events = list(client.events(since=now - 60, until=now - 1, decode=True))
    assert events == []


def test_api_errors_raise_docker_errors(client):
    with pytest.raises(docker.errors.NotFound) as caught:
        client.api._result(client.api._get(client.api._url("/no/such/route")), json=True)
    assert "page not found" in str(caught.value)
