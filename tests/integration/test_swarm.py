"""Issue 8, part 2: one training job across several machines, on a real 3-node Docker Swarm
started by the fixtures (tests/swarm_support.py), with S3 reachable from the nodes. One host per
node, reaching its peers as algo-1..N on the job's own network, each staging its own channels
and shard on its node (a Pipe channel's FIFOs fed there); the same /opt/ml tree, config files and environment as on one machine; the
hosts' archives merged into one model.tar.gz; a failing host stopping the others; stops with
their grace period; no deadlock between multi-host jobs; GPU hosts only on GPU nodes; jobs the
swarm can never hold, or whose hosts cannot all start, fail and leave nothing behind; the server
killed mid-job and a node lost mid-job. After every job no service, network, volume or container
of it is left on any node."""

from __future__ import annotations

import io
import json
import signal
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from botocore.exceptions import ClientError

from tests.registry_support import push, registry
from tests.server_support import RunningServer, wait_for_job
from tests.support import channel, job_request, trainforge
from tests.swarm_support import SwarmSetup, swarm_setup
from trainforge.engines.base import GroupSpec, HostContainer, Limits
from trainforge.engines.dockerapi import DockerApi
from trainforge.engines.swarm import PlacementError, SwarmEngine

pytestmark = pytest.mark.docker

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture(scope="module")
def setup(images: dict[str, str]) -> Iterator[SwarmSetup]:
    # The nodes pull what they lack, as real nodes do: a private image's test needs it.
    with swarm_setup([images["busybox"]], pulls=True) as ready:
        yield ready


@pytest.fixture(scope="module")
def bucket(setup: SwarmSetup) -> str:
    name = f"tf-swarm-{uuid.uuid4().hex[:8]}"
    setup.s3().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def private_image(setup: SwarmSetup) -> Iterator[tuple[str, str]]:
    """The test image in a registry with a login, on the address where the nodes reach this
    machine, and on no node: (the image, TRAINFORGE_REGISTRY_AUTH for it)."""
    login = ("swarm-user", uuid.uuid4().hex[:12])
    with registry(setup.cluster.bridge.address, [login]) as address:
        image = f"{address}/private/busybox:{uuid.uuid4().hex[:8]}"
        push(docker.APIClient(base_url=setup.cluster.url), setup.images[0], image, login)
        yield image, f"{address}={login[0]}:{login[1]}"


@pytest.fixture(scope="module")
def server(
    setup: SwarmSetup,
    private_image: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    running = setup.server(
        tmp_path_factory.mktemp("swarm-home"),
        TRAINFORGE_STOP_GRACE_SECONDS="5",
        TRAINFORGE_INSTANCE_METRICS_SECONDS="1",
        TRAINFORGE_REGISTRY_AUTH=private_image[1],
    )
    yield running
    running.stop()


def script_job(
    setup: SwarmSetup, bucket: str, script: str, hosts: int = 1, **extra: Any
) -> dict[str, Any]:
    """A job whose script comes through an S3 channel (nodes cannot read this machine's disk)."""
    prefix = f"code-{uuid.uuid4().hex[:8]}"
    setup.s3().put_object(Bucket=bucket, Key=f"{prefix}/train.sh", Body=script.encode())
    channels = [channel("code", f"s3://{bucket}/{prefix}/"), *extra.pop("channels", [])]
    request = job_request(
        setup.images[0],
        f"s3://{bucket}/out",
        channels=channels,
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
        **extra,
    )
    request["ResourceConfig"]["InstanceCount"] = hosts
    return request


def messages(server: RunningServer, name: str) -> dict[str, list[str]]:
    logs = server.client("logs")
    found: dict[str, list[str]] = {}
    try:
        streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")
    except ClientError:  # no job has a log yet
        return found
    for stream in streams["logStreams"]:
        host = stream["logStreamName"].split("/", 1)[1].rsplit("-", 1)[0]
        events = logs.get_log_events(
            logGroupName=GROUP, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        found[host] = [e["message"] for e in events]
    return found


def finished(server: RunningServer, name: str, timeout: float) -> dict[str, Any]:
    """``wait_for_job``; a job that does not end in time is reported with what its hosts
    printed and the last lines of the server's log (a hang on the cluster is otherwise blind)."""
    try:
        return wait_for_job(server.client("sagemaker"), name, timeout=timeout)
    except AssertionError as exc:
        tail = server.log_files[-1].read_text(errors="replace").splitlines()[-40:]
        raise AssertionError(
            f"{exc}\nthe hosts printed: {messages(server, name)}\nthe server's log ends:\n"
            + "\n".join(tail)
        ) from None


def every_host_printed(
    server: RunningServer, name: str, hosts: tuple[str, ...], line: str, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = messages(server, name)
        if all(line in found.get(host, []) for host in hosts):
            return
        time.sleep(0.3)
    raise AssertionError(f"not every host of {name} printed {line!r}")


def archive(setup: SwarmSetup, bucket: str, key: str) -> dict[str, bytes]:
    data = setup.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def nothing_left(setup: SwarmSetup, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (left := setup.cluster.leftovers(name)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == []


def value(lines: list[str], key: str) -> str:
    return next(line[len(key) + 1 :] for line in lines if line.startswith(key + " "))


# Waits until every peer answers, so no host ends before the others reach it.
PEERS = """
for h in $(seq 1 {n}); do i=0; until ping -c1 -W1 algo-$h >/dev/null 2>&1 || [ $i -ge 30 ]; do
  i=$((i+1)); sleep 0.3; done; done
"""
# Whether something outside the job (the S3 endpoint) answers: a request line gets moto's answer
# and the end of the connection; with no way out, the connection never opens.
OUTSIDE = """
if echo | timeout 3 nc {address} >/dev/null 2>&1; then echo "outside reached"; else
  echo "outside unreached"; fi
"""
# First what needs the peers alive: a host that is quicker with the rest may be gone later.
REPORT = """
echo "reach $(for h in algo-1 algo-2 algo-3; do for t in 1 2 3 4 5; do
  if ping -c1 -W2 $h >/dev/null; then echo -n "$h "; break; fi; sleep 0.3; done; done)"
echo "node $(grep ' /opt/ml ' /proc/self/mountinfo | awk '{print $4}' | cut -d/ -f5)"
echo "shard $(ls /opt/ml/input/data/shard | tr '\\n' ' ')"
echo "train $(ls /opt/ml/input/data/train | tr '\\n' ' ')"
echo "pipe $(cat /opt/ml/input/data/pipe_0 | tr '\\n' ' ')| $(cat /opt/ml/input/data/pipe_1 | tr '\\n' ' ')"
echo "config $(cat /opt/ml/input/config/resourceconfig.json)"
echo "env $TRAINING_JOB_NAME $AWS_REGION $MY_VAR"
echo "credentials $(wget -q -O - --header "Authorization: $(cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)" \
  "$AWS_CONTAINER_CREDENTIALS_FULL_URI" | grep -o '"AccessKeyId": "[^"]*"' | cut -c17-20)"
OUTSIDE
if (echo x > /opt/ml/input/data/train/new) 2>/dev/null; then echo "data writable"; else echo "data read-only"; fi
hostname > /opt/ml/model/$(hostname).txt
hostname > /opt/ml/model/clash.txt
hostname > /opt/ml/output/data/$(hostname).out
sleep 3
"""


def test_a_three_host_job_runs_one_host_per_node_with_its_own_data(
    setup: SwarmSetup, server: RunningServer, bucket: str, private_image: tuple[str, str]
) -> None:
    s3 = setup.s3()
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"data/part-{i}.csv", Body=f"{i}\n".encode())
    request = script_job(
        setup,
        bucket,
        PEERS.format(n=3) + REPORT.replace("OUTSIDE", outside(setup)),
        hosts=3,
        channels=[
            channel("train", f"s3://{bucket}/data/"),
            channel("shard", f"s3://{bucket}/data/", distribution="ShardedByS3Key"),
            # Fed on each host's node by its attend agent, epoch after epoch.
            channel(
                "pipe", f"s3://{bucket}/data/", distribution="ShardedByS3Key", InputMode="Pipe"
            ),
        ],
        Environment={"MY_VAR": "mine"},
    )
    name = request["TrainingJobName"]
    # A second job of three hosts, created at once: three nodes hold one of them at a time.
    # Its image is in a registry that wants a login and on no node: every node pulls it with
    # the login the server was given, sent with the services (issue 12).
    second = script_job(setup, bucket, "true\n", hosts=3)
    second["AlgorithmSpecification"]["TrainingImage"] = private_image[0]
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    sm.create_training_job(**second)
    done = finished(server, name, 180)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    after = finished(server, second["TrainingJobName"], 180)
    assert after["TrainingJobStatus"] == "Completed", after.get("FailureReason")
    # It waited whole, not half-placed: no deadlock between jobs of several hosts.
    assert "Pending" in [t["Status"] for t in after["SecondaryStatusTransitions"]]
    assert after["TrainingStartTime"] >= done["TrainingEndTime"]
    logs = messages(server, name)
    assert sorted(logs) == ["algo-1", "algo-2", "algo-3"]
    nodes = {host: value(lines, "node") for host, lines in logs.items()}
    assert len(set(nodes.values())) == 3, nodes
    assert set(nodes.values()) == set(setup.cluster.node_ids())
    shards = {host: set(value(lines, "shard").split()) for host, lines in logs.items()}
    assert shards == {
        "algo-1": {"part-0.csv", "part-3.csv"},
        "algo-2": {"part-1.csv", "part-4.csv"},
        "algo-3": {"part-2.csv"},
    }
    pipes = {
        host: [e.split() for e in value(lines, "pipe").split("|")] for host, lines in logs.items()
    }
    assert pipes == {
        "algo-1": [["0", "3"], ["0", "3"]],
        "algo-2": [["1", "4"], ["1", "4"]],
        "algo-3": [["2"], ["2"]],
    }
    for host, lines in logs.items():
        assert value(lines, "train").split() == [f"part-{i}.csv" for i in range(5)]
        assert value(lines, "reach").split() == ["algo-1", "algo-2", "algo-3"]
        config = json.loads(value(lines, "config"))
        assert config["current_host"] == host
        assert config["hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert value(lines, "env") == f"{name} us-east-1 mine"
        assert "data writable" in lines  # its own File-mode copy, as on SageMaker
        assert "outside reached" in lines  # not isolated: the way out is open
        # The role's credentials (AssumeRole at moto's STS) through the relay on its node.
        assert value(lines, "credentials") == "ASIA", lines
    model = archive(setup, bucket, f"out/{name}/output/model.tar.gz")
    assert model == {
        "algo-1.txt": b"algo-1\n",
        "algo-2.txt": b"algo-2\n",
        "algo-3.txt": b"algo-3\n",
        "clash.txt": b"algo-3\n",  # the later host wins, as on one machine
    }
    output = archive(setup, bucket, f"out/{name}/output/output.tar.gz")
    assert sorted(output) == ["algo-1.out", "algo-2.out", "algo-3.out"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"out/{name}/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        f"out/{name}/output/model.tar.gz",
        f"out/{name}/output/output.tar.gz",
    ]
    nothing_left(setup, name)
    nothing_left(setup, second["TrainingJobName"])


CONTRACT = """
echo "args $0 $*"
echo "hyperparameters $(cat /opt/ml/input/config/hyperparameters.json)"
echo "inputdataconfig $(cat /opt/ml/input/config/inputdataconfig.json)"
echo "aws $(env | grep -o '^AWS_[A-Z0-9_]*' | sort | tr '\\n' ' ')"
echo "s3 $AWS_ENDPOINT_URL_S3"
echo "uri $AWS_CONTAINER_CREDENTIALS_FULL_URI"
token=$(cat "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
echo "token $(ls -l "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" | cut -c1-10) ${#token}"
if env | grep -q -F "$token"; then echo "token in env"; fi
echo "credentials $(wget -q -O - --header "Authorization: $token" "$AWS_CONTAINER_CREDENTIALS_FULL_URI" | grep -o '"AccessKeyId": "[^"]*"' | cut -c17-20)"
if wget -q -O - --header "Authorization: x$token" "$AWS_CONTAINER_CREDENTIALS_FULL_URI" >/dev/null 2>&1
then echo "forged token answered"; else echo "forged token refused"; fi
echo "shared $(cat /opt/ml/input/data/local/shared.txt)"
echo started
while true; do sleep 0.2; done
"""


def test_the_container_contract_is_the_one_of_one_machine(
    setup: SwarmSetup, images: dict[str, str], bucket: str, tmp_path: Path
) -> None:
    """Invocation, config files, environment (the agents' S3 credentials never reach the
    container; the S3 endpoint does, and the role's credentials through the node's relay of
    the server's credentials endpoint, with a token in a swarm secret), a local channel under a
    path every node shares, MaxRuntimeInSeconds."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "shared.txt").write_text("seen by every node")
    prefix = f"code-{uuid.uuid4().hex[:8]}"
    setup.s3().put_object(Bucket=bucket, Key=f"{prefix}/train.sh", Body=CONTRACT.encode())
    request = job_request(
        images["busybox"],
        f"s3://{bucket}/out",
        channels=[
            channel("code", f"s3://{bucket}/{prefix}/"),
            channel("local", f"file://{shared}"),
        ],
        entrypoint=["/bin/sh", "/opt/ml/input/data/code/train.sh"],
        arguments=["--epochs", "3"],
        HyperParameters={"lr": "0.1"},
        StoppingCondition={"MaxRuntimeInSeconds": 10},
    )
    home = tmp_path / "home"
    home.mkdir()
    with setup.server(home, TRAINFORGE_SHARED_PATHS=str(shared)) as server:
        sm = server.client("sagemaker")
        sm.create_training_job(**request)
        done = finished(server, request["TrainingJobName"], 120)
        assert done["SecondaryStatus"] == "MaxRuntimeExceeded", done.get("FailureReason")
        [lines] = messages(server, request["TrainingJobName"]).values()
        # Removing a job's services and network follows its end: the server must be there.
        nothing_left(setup, request["TrainingJobName"])
    assert value(lines, "args") == "/opt/ml/input/data/code/train.sh --epochs 3"
    assert value(lines, "hyperparameters") == '{"lr": "0.1"}'
    assert json.loads(value(lines, "inputdataconfig")) == {
        "code": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "local": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
    }
    # The S3 endpoint the server uses, reachable from the nodes; no keys in the environment:
    # the role's credentials come from the relay on the node, with the job's token.
    assert value(lines, "aws").split() == [
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
    ]
    assert value(lines, "s3") == setup.s3_endpoint
    uri = value(lines, "uri")
    assert uri.startswith("http://169.254.170.2:") and uri.endswith("/v1/credentials"), uri
    assert value(lines, "token") == "-r--r--r-- 43", lines
    assert "token in env" not in lines
    # AssumeRole of the job's role at moto's STS: temporary keys start with ASIA.
    assert value(lines, "credentials") == "ASIA", lines
    assert "forged token refused" in lines
    assert not [line for line in lines if "WARNING" in line], lines
    assert value(lines, "shared") == "seen by every node"


# The trap comes first: algo-2 can fail as soon as it sees algo-1, while algo-1 may still be
# looking for algo-2, and a SIGTERM before the trap would go unanswered (PID 1 ignores it).
# algo-2 fails only once algo-1 has its trap set (it serves a page from then on), and algo-1
# waits on nothing that could hold the trap back: a shell runs a trap only between commands, and
# a lookup of a peer's name that is not up yet can take the embedded DNS longer than the grace.
FAILS_ON_TWO = """trap 'echo "terminated by the platform"; exit 143' TERM
if [ "$(hostname)" = algo-2 ]; then
  i=0
  until timeout 2 wget -q -O /dev/null http://algo-1:7000/ 2>/dev/null || [ $i -ge 100 ]; do
    i=$((i+1)); sleep 0.3; done
  echo "ValueError: broken" > /opt/ml/output/failure; exit 3
fi
mkdir -p /tmp/www && echo armed > /tmp/www/index.html && httpd -p 7000 -h /tmp/www
while true; do sleep 0.1; done
"""


def test_a_failing_host_stops_the_others_and_gives_its_reason(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    request = script_job(setup, bucket, FAILS_ON_TWO, hosts=2)
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    done = finished(server, request["TrainingJobName"], 120)
    assert done["FailureReason"] == "AlgorithmError: ValueError: broken, exit code: 3"
    assert "terminated by the platform" in messages(server, request["TrainingJobName"])["algo-1"]
    nothing_left(setup, request["TrainingJobName"])


SAVES_ON_TERM = (
    PEERS.format(n=2)
    + """
trap 'echo got-sigterm; hostname > /opt/ml/model/saved-$(hostname).txt;
      hostname > /opt/ml/checkpoints/late-$(hostname); exit 0' TERM
hostname > /opt/ml/checkpoints/early-$(hostname)
hostname > /opt/ml/output/tensorboard/events-$(hostname)
OUTSIDE
echo "aws $(env | grep -o '^AWS_[A-Z0-9_]*' | grep -v REGION | sort | tr '\\n' ' ')end"
if [ -e /etc/trainforge ]; then echo "token mount present"; fi
echo ready
while true; do sleep 0.1; done
"""
)


def outside(setup: SwarmSetup) -> str:
    address = setup.s3_endpoint.split("//", 1)[1].replace(":", " ")
    return OUTSIDE.format(address=address)


def keys(setup: SwarmSetup, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = setup.s3()
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        for o in found
    }


def test_stop_reaches_every_isolated_host_and_what_they_saved_is_uploaded_and_synced(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    ckpt = f"ckpt-{uuid.uuid4().hex[:6]}/"
    request = script_job(
        setup,
        bucket,
        SAVES_ON_TERM.replace("OUTSIDE", outside(setup)),
        hosts=2,
        CheckpointConfig={"S3Uri": f"s3://{bucket}/{ckpt}"},
        TensorBoardOutputConfig={"S3OutputPath": f"s3://{bucket}/tb"},
        EnableNetworkIsolation=True,
    )
    name = request["TrainingJobName"]
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    every_host_printed(server, name, ("algo-1", "algo-2"), "ready")
    # Isolated: the hosts reached each other (PEERS) and nothing outside, yet the agents beside
    # them (outside the job's network) still copy what they write, and read their use.
    assert all("outside unreached" in lines for lines in messages(server, name).values())
    # Nor do they get an S3 endpoint, a credentials endpoint or a token (issue 12).
    for lines in messages(server, name).values():
        assert value(lines, "aws") == "end" and "token mount present" not in lines, lines
    # The agents beside the hosts copy what they write while they run, from their nodes.
    early = {"early-algo-1": b"algo-1\n", "early-algo-2": b"algo-2\n"}
    tensorboard = {"events-algo-1": b"algo-1\n", "events-algo-2": b"algo-2\n"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        keys(setup, bucket, ckpt) != early
        or keys(setup, bucket, f"tb/{name}/tensorboard-output/") != tensorboard
    ):
        time.sleep(0.3)
    assert keys(setup, bucket, ckpt) == early
    assert keys(setup, bucket, f"tb/{name}/tensorboard-output/") == tensorboard
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    # Each host's instance metrics, read on its node by the agent beside it.
    cloudwatch = server.client("cloudwatch")
    wanted = {
        (m, f"{name}/algo-{i}") for m in ("CPUUtilization", "MemoryUtilization") for i in (1, 2)
    }
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = cloudwatch.list_metrics(Namespace=GROUP)["Metrics"]
        seen = {(m["MetricName"], d["Value"]) for m in listed for d in m["Dimensions"]}
        if wanted <= seen:
            break
        time.sleep(0.5)
    assert wanted <= seen, seen
    sm.stop_training_job(TrainingJobName=name)
    done = finished(server, name, 120)
    assert done["SecondaryStatus"] == "Stopped"
    assert archive(setup, bucket, f"out/{name}/output/model.tar.gz") == {
        "saved-algo-1.txt": b"algo-1\n",
        "saved-algo-2.txt": b"algo-2\n",
    }
    # What each host wrote in the grace period, by the final flush on its node.
    assert keys(setup, bucket, ckpt) == {
        **early,
        "late-algo-1": b"algo-1\n",
        "late-algo-2": b"algo-2\n",
    }
    nothing_left(setup, name)


def test_local_paths_are_refused_naming_the_field(
    setup: SwarmSetup, server: RunningServer, bucket: str, tmp_path: Path
) -> None:
    request = script_job(setup, bucket, "true\n")
    request["OutputDataConfig"]["S3OutputPath"] = f"file://{tmp_path}"
    with pytest.raises(ClientError) as refused:
        server.client("sagemaker").create_training_job(**request)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        f"Value 'file://{tmp_path}' at 'outputDataConfig.s3OutputPath' is a local path, which "
        "the nodes of a cluster engine cannot read: give an S3 URI, or declare the path shared "
        "by all nodes (TRAINFORGE_SHARED_PATHS)."
    )


GPU_REPORT = """
echo "node $(grep ' /opt/ml ' /proc/self/mountinfo | awk '{print $4}' | cut -d/ -f5)"
echo "gpus ${NVIDIA_VISIBLE_DEVICES:-none}"
"""


def test_gpu_hosts_land_on_gpu_nodes_and_get_their_gpus(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    request = script_job(setup, bucket, GPU_REPORT)
    request["ResourceConfig"] = {
        "InstanceGroups": [
            {"InstanceGroupName": "cpu", "InstanceType": "ml.m5.large", "InstanceCount": 1},
            {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.2xlarge", "InstanceCount": 1},
        ],
        "VolumeSizeInGB": 1,
    }
    name = request["TrainingJobName"]
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    done = finished(server, name, 120)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    logs = messages(server, name)
    gpu_node = setup.cluster.node_id(setup.cluster.nodes[-1])
    assert value(logs["algo-2"], "node") == gpu_node
    assert value(logs["algo-2"], "gpus") == "0"
    assert value(logs["algo-1"], "gpus") == "none"
    nothing_left(setup, name)


def test_a_job_the_swarm_can_never_hold_fails_with_capacity_error(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    request = script_job(setup, bucket, "true\n", hosts=4)
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    done = finished(server, request["TrainingJobName"], 60)
    assert done["TrainingJobStatus"] == "Failed"
    assert done["FailureReason"].startswith(
        "CapacityError: Unable to provision requested ML compute capacity. The account-level "
        "service limit 'ml.m5.large for training job usage' is 3 Instances"
    )


def test_hosts_that_cannot_all_start_in_time_leave_nothing_behind(
    setup: SwarmSetup, images: dict[str, str]
) -> None:
    cluster = setup.cluster
    # Long enough for the placeable host to start on a busy machine (its node tries a pull
    # first); the other never can.
    engine = SwarmEngine("placement-test", DockerApi(base_url=cluster.url), place_seconds=15)
    paused = cluster.node_id(cluster.nodes[1])
    cluster.manager.docker("node", "update", "--availability", "pause", paused)
    try:

        def host(name: str, node: str) -> HostContainer:
            return HostContainer(
                name, images["busybox"], ("sleep",), ("60",), {}, (), Limits(), f"s/{name}", node
            )

        group = GroupSpec(
            "half-placed",
            (host("algo-1", cluster.node_id(cluster.nodes[0])), host("algo-2", paused)),
            isolated=False,
            stop_grace_seconds=1,
        )
        with pytest.raises(PlacementError, match="1 of 2 hosts of the job could not start"):
            engine.start(group)
    finally:
        cluster.manager.docker("node", "update", "--availability", "active", paused)
    nothing_left(setup, "half-placed")


SLOW = "echo started\nsleep 8\necho finished\nhostname > /opt/ml/model/$(hostname).txt\n"


def test_a_kill_9_of_the_server_mid_job_is_taken_over(
    setup: SwarmSetup, bucket: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    request = script_job(setup, bucket, SLOW, hosts=2)
    name = request["TrainingJobName"]
    with setup.server(home) as server:
        sm = server.client("sagemaker")
        sm.create_training_job(**request)
        every_host_printed(server, name, ("algo-1", "algo-2"), "started")
        server.stop(signal.SIGKILL)
        server.start()
        done = wait_for_job(server.client("sagemaker"), name, timeout=120)
        assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
        logs = messages(server, name)
        assert logs["algo-1"] == ["started", "finished"]
        assert logs["algo-2"] == ["started", "finished"]
        nothing_left(setup, name)
    assert sorted(archive(setup, bucket, f"out/{name}/output/model.tar.gz")) == [
        "algo-1.txt",
        "algo-2.txt",
    ]


NODE_THEN_WAIT = """
echo "node $(grep ' /opt/ml ' /proc/self/mountinfo | awk '{print $4}' | cut -d/ -f5)"
while true; do sleep 0.2; done
"""


def test_a_node_lost_mid_job_fails_the_job_naming_the_host(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    """Last of the module: it kills a node's daemon (and starts it again)."""
    request = script_job(setup, bucket, NODE_THEN_WAIT, hosts=2)
    name = request["TrainingJobName"]
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    deadline = time.monotonic() + 120
    nodes: dict[str, str] = {}
    while len(nodes) < 2 and time.monotonic() < deadline:
        nodes = {h: value(lines, "node") for h, lines in messages(server, name).items() if lines}
        time.sleep(0.3)
    manager_id = setup.cluster.node_id(setup.cluster.manager)
    lost_host = next(h for h, node in sorted(nodes.items()) if node != manager_id)
    victim = next(n for n in setup.cluster.nodes if setup.cluster.node_id(n) == nodes[lost_host])
    killed = time.monotonic()
    victim.stop(signal.SIGKILL)
    try:
        done = finished(server, name, 90)
        took = time.monotonic() - killed
        assert done["TrainingJobStatus"] == "Failed"
        assert done["FailureReason"] == (
            f"InternalServerError: Host {lost_host} was lost while the job ran: its container "
            "no longer exists."
        )
        assert took < 60
    finally:
        victim.start()
    nothing_left(setup, name, timeout=60)


# A spot-aware algorithm on each host: resumes from its own checkpoint, or trains until SIGTERM
# and saves its step then. (No wait for the peers: a host that resumed ends at once.)
RESUMES_ON_EACH_HOST = """
if [ -f /opt/ml/checkpoints/step-$(hostname) ]; then
  echo "resumed from step $(cat /opt/ml/checkpoints/step-$(hostname))"; exit 0
fi
trap 'echo 8 > /opt/ml/checkpoints/step-$(hostname); exit 0' TERM
echo ready
while true; do sleep 0.1; done
"""


def test_an_interrupted_spot_job_restarts_on_fresh_hosts_with_their_checkpoints(
    setup: SwarmSetup, server: RunningServer, bucket: str
) -> None:
    ckpt = f"spot-{uuid.uuid4().hex[:6]}/"
    request = script_job(
        setup,
        bucket,
        RESUMES_ON_EACH_HOST,
        hosts=2,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        CheckpointConfig={"S3Uri": f"s3://{bucket}/{ckpt}"},
    )
    name = request["TrainingJobName"]
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    every_host_printed(server, name, ("algo-1", "algo-2"), "ready")
    interrupt = trainforge(server.home, "interrupt", name)
    assert interrupt.returncode == 0, interrupt.stderr
    done = finished(server, name, 180)
    assert done["TrainingJobStatus"] == "Completed", done.get("FailureReason")
    statuses = [t["Status"] for t in done["SecondaryStatusTransitions"]]
    assert statuses[statuses.index("Interrupted") :] == [
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    # Each host's checkpoint, saved in its grace period on its node, reached S3 and its new
    # container; the second attempt logs in streams of its own.
    assert keys(setup, bucket, ckpt) == {"step-algo-1": b"8\n", "step-algo-2": b"8\n"}
    found = messages(server, name)
    assert all("resumed from step 8" in found[h] for h in ("algo-1", "algo-2")), found
    streams = server.client("logs").describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=name + "/"
    )["logStreams"]
    assert len(streams) == 4
    nothing_left(setup, name)
