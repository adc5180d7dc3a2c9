"""Worker providers for real: local processes (forkserver) and EC2 instances on moto, each also
driven by the autoscaler from a SqliteQueue backlog."""

from __future__ import annotations

import functools
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from facereel.imagetier.autoscale import SCALE_IN, SCALE_OUT, Autoscaler, ScalingPolicy
from facereel.imagetier.providers import ROLE_TAG, Ec2Provider, LocalProcessProvider, make_ec2
from facereel.ports.queue.sqlite import SqliteQueue
from tests.support.provider_workers import pid_worker, queue_worker, stubborn_worker
from tests.support.servers import MotoServer

TIMEOUT_S = 20.0


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = TIMEOUT_S) -> Any:
    """Poll until `condition()` is truthy and return it; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def pids(directory: Path, suffix: str = ".pid") -> dict[int, set[int]]:
    """slot -> pids of the workers that wrote `<slot>-<pid><suffix>` in `directory`."""
    found: dict[int, set[int]] = {}
    for path in directory.glob(f"*{suffix}"):
        slot, pid = path.stem.split("-")
        found.setdefault(int(slot), set()).add(int(pid))
    return found


@pytest.fixture
def provider_factory() -> Iterator[Callable[..., LocalProcessProvider]]:
    """Makes LocalProcessProviders and stops all their workers at the end, whatever happened."""
    made: list[LocalProcessProvider] = []

    def factory(target: Any, **kwargs: Any) -> LocalProcessProvider:
        provider = LocalProcessProvider(target, name="test-worker", **kwargs)
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        provider.stop_all(timeout_s=5.0)


def test_local_provider_scales_up_and_down(
        tmp_path: Path, provider_factory: Callable[..., LocalProcessProvider]) -> None:
    provider = provider_factory(functools.partial(pid_worker, tmp_path))
    assert provider.count() == 0
    provider.scale_to(2)
    assert provider.count() == 2
    started = wait_for(lambda: (p := pids(tmp_path)) and len(p) == 2 and p, "2 workers")
    assert sorted(started) == [0, 1]
    assert "2 running" in provider.describe()

    provider.scale_to(1)  # slot 1 is asked to stop; it no longer counts at once
    assert provider.count() == 1
    stopped = wait_for(lambda: pids(tmp_path, ".stopped"), "slot 1 to stop")
    assert stopped == {1: started[1]}
    wait_for(lambda: provider.stopping() == 0, "slot 1 to be reaped")
    assert provider.count() == 1

    provider.scale_to(2)  # the freed slot is reused
    wait_for(lambda: len(pids(tmp_path).get(1, ())) == 2, "a new worker on slot 1")
    provider.scale_to(0)
    assert provider.count() == 0
    wait_for(lambda: provider.stopping() == 0, "every worker to exit")
    assert {slot: len(p) for slot, p in pids(tmp_path, ".stopped").items()} == {0: 1, 1: 2}


def test_local_provider_replaces_a_killed_worker(
        tmp_path: Path, provider_factory: Callable[..., LocalProcessProvider]) -> None:
    provider = provider_factory(functools.partial(pid_worker, tmp_path))
    provider.scale_to(2)
    started = wait_for(lambda: (p := pids(tmp_path)) and len(p) == 2 and p, "2 workers")
    (victim,) = started[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: provider.count() == 1, "the killed worker to stop being counted")
    provider.scale_to(2)
    assert provider.count() == 2
    restarted = wait_for(lambda: len(pids(tmp_path).get(0, ())) == 2 and pids(tmp_path),
                         "a new worker on slot 0")
    assert restarted[0] - {victim} and restarted[1] == started[1]


def test_local_provider_stop_all_ends_every_worker(
        tmp_path: Path, provider_factory: Callable[..., LocalProcessProvider]) -> None:
    provider = provider_factory(functools.partial(pid_worker, tmp_path))
    provider.scale_to(3)
    wait_for(lambda: len(pids(tmp_path)) == 3, "3 workers")
    provider.stop_all(timeout_s=10.0)
    assert provider.count() == 0 and provider.stopping() == 0
    assert sorted(pids(tmp_path, ".stopped")) == [0, 1, 2]  # each stopped cleanly


def test_local_provider_kills_a_worker_that_ignores_its_stop(
        tmp_path: Path, provider_factory: Callable[..., LocalProcessProvider],
        caplog: pytest.LogCaptureFixture) -> None:
    provider = provider_factory(functools.partial(stubborn_worker, tmp_path), stop_grace_s=0.0)
    provider.scale_to(1)
    ((pid,),) = wait_for(lambda: pids(tmp_path), "the worker to start").values()
    provider.scale_to(0)  # no grace at all: the next look kills it
    assert provider.count() == 0
    wait_for(lambda: provider.stopping() == 0, "the worker to be killed and reaped")
    assert any("ignored its stop" in r.getMessage() for r in caplog.records)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone for good


def test_autoscaler_with_local_processes_drains_the_queue(
        tmp_path: Path, provider_factory: Callable[..., LocalProcessProvider]) -> None:
    queue = SqliteQueue(tmp_path / "queue.db", "requests")
    provider = provider_factory(functools.partial(queue_worker, queue.path, queue.name))
    policy = ScalingPolicy(min_workers=0, max_workers=3, backlog_per_worker=4,
                           scale_in_delay_s=0.5)
    autoscaler = Autoscaler(provider, queue, policy)
    for i in range(30):
        queue.send({"id": f"r{i}"})

    first = autoscaler.step()
    assert (first.action, first.desired) == (SCALE_OUT, 3)
    assert provider.count() == 3

    def scaled_in() -> bool:
        autoscaler.step()
        return provider.count() == 0

    wait_for(scaled_in, "the queue to drain and the tier to scale in")
    depth = queue.depth()
    assert (depth.visible, depth.in_flight, depth.delayed) == (0, 0, 0)
    assert autoscaler.history[0] == first
    assert autoscaler.history[-1].action == SCALE_IN
    assert all(d.desired <= 3 for d in autoscaler.history)


@pytest.fixture(scope="module")
def ec2(moto: MotoServer) -> Any:
    return make_ec2(region="us-east-1", endpoint_url=moto.endpoint, access_key="testing",
                    secret_key="testing")


@pytest.fixture(scope="module")
def ami(ec2: Any) -> str:
    images = ec2.describe_images()["Images"]
    assert images, "moto ships default AMIs"
    return str(images[0]["ImageId"])


@pytest.fixture
def ec2_provider(ec2: Any, ami: str) -> Iterator[Ec2Provider]:
    """A provider on its own tag, so tests never see each other's instances."""
    provider = Ec2Provider(ec2, ami, tag_value=f"app-tier-{uuid.uuid4().hex[:8]}")
    yield provider
    provider.scale_to(0)


def tags_of(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def names(provider: Ec2Provider) -> list[str]:
    return sorted(tags_of(i)["Name"] for i in provider.instances())


def test_ec2_provider_scales_with_tags(ec2: Any, ec2_provider: Ec2Provider) -> None:
    tier = ec2_provider.tag_value
    assert ec2_provider.count() == 0
    ec2_provider.scale_to(1)
    ec2_provider.scale_to(3)
    assert ec2_provider.count() == 3
    assert names(ec2_provider) == [f"{tier}-instance-{n}" for n in (1, 2, 3)]
    for instance in ec2_provider.instances():
        assert tags_of(instance)[ROLE_TAG] == tier
        assert instance["ImageId"] == ec2_provider.image_id
        assert instance["InstanceType"] == "t3.micro"
    assert tier in ec2_provider.describe()

    everything = {i["InstanceId"] for i in ec2_provider.instances()}
    ec2_provider.scale_to(1)  # the newest go first: instance-1 was launched before the rest
    assert ec2_provider.count() == 1
    assert names(ec2_provider) == [f"{tier}-instance-1"]
    (kept,) = ec2_provider.instances()
    states = {i["InstanceId"]: i["State"]["Name"]
              for r in ec2.describe_instances(InstanceIds=sorted(everything))["Reservations"]
              for i in r["Instances"]}
    gone = everything - {kept["InstanceId"]}
    assert all(states[i] in {"shutting-down", "terminated"} for i in gone)

    ec2_provider.scale_to(2)  # the lowest free number is reused
    assert names(ec2_provider) == [f"{tier}-instance-1", f"{tier}-instance-2"]
    ec2_provider.scale_to(0)
    assert ec2_provider.count() == 0


def test_ec2_provider_ignores_other_tiers_and_terminated_instances(
        ec2: Any, ami: str, ec2_provider: Ec2Provider) -> None:
    other = Ec2Provider(ec2, ami, tag_value=f"other-{uuid.uuid4().hex[:8]}")
    try:
        other.scale_to(2)
        ec2_provider.scale_to(1)
        assert (other.count(), ec2_provider.count()) == (2, 1)
        (instance,) = ec2_provider.instances()
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])  # e.g. by hand
        assert ec2_provider.count() == 0
        assert other.count() == 2
    finally:
        other.scale_to(0)


def test_autoscaler_drives_ec2_instances(tmp_path: Path, ec2_provider: Ec2Provider) -> None:
    queue = SqliteQueue(tmp_path / "queue.db", "requests")
    now = [0.0]
    policy = ScalingPolicy(min_workers=0, max_workers=4, backlog_per_worker=2,
                           scale_in_delay_s=10)
    autoscaler = Autoscaler(ec2_provider, queue, policy, clock=lambda: now[0])
    for i in range(5):
        queue.send({"id": f"r{i}"})
    assert autoscaler.step().action == SCALE_OUT
    assert ec2_provider.count() == 3

    for message in queue.receive(5):
        queue.ack(message)
    now[0] = 1.0
    assert autoscaler.step().current == 3  # waits for the delay
    assert ec2_provider.count() == 3
    now[0] = 11.5
    decision = autoscaler.step()
    assert (decision.action, decision.current) == (SCALE_IN, 3)
    assert ec2_provider.count() == 0
