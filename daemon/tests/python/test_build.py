"""docker-py's images.build (the real Python SDK) against berthd's
classic builder.

BERTHD_HOST names the daemon and BERTH_TEST_TMP a scratch directory; run
through `cargo test -p berth-daemon --test build`, which starts berthd
and imports a `busybox` image.
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


def context_dir(name, dockerfile, files):
    root = os.path.join(os.environ["BERTH_TEST_TMP"], name)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "Dockerfile"), "w") as f:
        f.write(dockerfile)
    for path, content in files.items():
        with open(os.path.join(root, path), "w") as f:
            f.write(content)
    return root


def test_build_from_a_path_returns_the_image_and_its_log(client):
    path = context_dir(
        "py-path",
        'FROM busybox\nARG N=0\nCOPY msg.txt /msg.txt\nRUN echo "n=$N" >> /msg.txt\n'
        'CMD ["cat", "/msg.txt"]\n',
        {"msg.txt": "from python\n"},
    )
    image, logs = client.images.build(
        path=path, tag="pybuilt:1", buildargs={"N": "7"}, labels={"via": "docker-py"}
    )
    assert "pybuilt:1" in image.tags
    assert image.labels["via"] == "docker-py"
    streamed = "".join(chunk.get("stream", "") for chunk in logs)
    assert "Step 4/5 : RUN" in streamed
    assert client.containers.run("pybuilt:1", remove=True) == b"from python\nn=7\n"


def test_build_from_a_fileobj_and_a_failing_step(client):
    dockerfile = io.BytesIO(b"FROM busybox\nCMD [\"echo\", \"from fileobj\"]\n")
    image, logs = client.images.build(fileobj=dockerfile, tag="pyfileobj")
    assert any("Successfully built" in chunk.get("stream", "") for chunk in logs)
    assert client.containers.run(image.id, remove=True) == b"from fileobj\n"

    # The low-level stream, read to its end: the step's output, then
    # moby's error message with the step's status as its code.
    bad = io.BytesIO(b"FROM busybox\nRUN echo oops; exit 2\n")
    chunks = list(client.api.build(fileobj=bad, decode=True))
    assert {"stream": "oops\n"} in chunks
    assert chunks[-1] == {
        "errorDetail": {
            "code": 2,
            "message": "The command '/bin/sh -c echo oops; exit 2' returned a non-zero code: 2",
        },
        "error": "The command '/bin/sh -c echo oops; exit 2' returned a non-zero code: 2",
    }
    assert client.containers.list(all=True) == []


def test_a_bad_dockerfile_is_an_api_error_naming_the_line(client):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = b"FROM busybox\nNOPE x\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out.seek(0)
    with pytest.raises(docker.errors.APIError) as err:
        client.images.build(fileobj=out, custom_context=True)
    assert err.value.status_code == 400
    assert "dockerfile parse error on line 2: unknown instruction: NOPE" in str(err.value)
