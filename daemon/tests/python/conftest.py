"""The docker-py client shared by the tests here: BERTHD_HOST names the
berthd the Rust test started."""
import os

import docker
import pytest


@pytest.fixture
def client():
    c = docker.DockerClient(base_url=os.environ["BERTHD_HOST"], version="auto")
    yield c
    c.close()
