"""Worker providers for the autoscaler: local processes, or EC2 instances (the app tier).

Both satisfy `facereel.imagetier.autoscale.WorkerProvider`. `count()` answers how many workers
run or are starting, never those already asked to stop, so a worker that died or is being
retired is replaced by the autoscaler's next step. Neither provider blocks while workers stop:
a stopping process gets `stop_grace_s` to finish its request, an instance shuts down on AWS.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facereel.runtime.stopflag import StopFlag

log = logging.getLogger(__name__)

WorkerTarget = Callable[[int, Any], None]  # target(slot, stop_event); picklable
ROLE_TAG = "facereel-role"
ACTIVE_STATES = ["pending", "running"]


@dataclass
class _Worker:
    process: Any  # multiprocessing.process.BaseProcess of the provider's context
    stop: Any  # that context's Event, set to ask this one worker to stop
    stopping_since: float | None = None


class LocalProcessProvider:
    """Worker processes on this machine, each on a slot (0, 1, ...) with its own stop event."""

    def __init__(self, target: WorkerTarget, context: Any = None, name: str = "app-worker",
                 stop_grace_s: float = 30.0) -> None:
        self.target = target
        self.name = name
        self.stop_grace_s = stop_grace_s
        self._context = context if context is not None else mp.get_context("forkserver")
        self._workers: dict[int, _Worker] = {}
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            self._reap()
            return len(self._active())

    def stopping(self) -> int:
        """Workers asked to stop that have not exited yet."""
        with self._lock:
            self._reap()
            return len(self._workers) - len(self._active())

    def scale_to(self, target: int) -> None:
        if target < 0:
            raise ValueError(f"cannot scale to {target} workers")
        with self._lock:
            self._reap()
            active = self._active()
            for slot in active[target:][::-1]:  # the highest slots go first
                self._ask_stop(slot)
            free = [s for s in range(len(self._workers) + target) if s not in self._workers]
            for slot in free[:target - len(active)]:  # the lowest free slots
                self._start(slot)

    def stop_all(self, timeout_s: float = 30.0) -> None:
        """Ask every worker to stop, wait up to `timeout_s` in all, then kill the rest."""
        with self._lock:
            for slot in self._active():
                self._ask_stop(slot)
            deadline = time.monotonic() + timeout_s
            for worker in self._workers.values():
                worker.process.join(max(0.0, deadline - time.monotonic()))
            for slot, worker in self._workers.items():
                if worker.process.is_alive():
                    log.warning("worker %s-%d did not stop in %g s; killing it", self.name,
                                slot, timeout_s)
                    worker.process.kill()
                    worker.process.join(5.0)
            self._reap()

    def describe(self) -> str:
        with self._lock:
            self._reap()
            active = len(self._active())
            stopping = len(self._workers) - active
        return (f"local processes {self.name!r} ({active} running, {stopping} stopping, "
                f"{self._context.get_start_method()})")

    def _active(self) -> list[int]:
        return sorted(s for s, w in self._workers.items() if w.stopping_since is None)

    def _start(self, slot: int) -> None:
        stop = StopFlag(self._context)
        process = self._context.Process(target=self.target, args=(slot, stop),
                                        name=f"{self.name}-{slot}")
        process.start()
        self._workers[slot] = _Worker(process, stop)
        log.info("started worker %s-%d (pid %s)", self.name, slot, process.pid,
                 extra={"slot": slot})

    def _ask_stop(self, slot: int) -> None:
        worker = self._workers[slot]
        worker.stop.set()
        worker.stopping_since = time.monotonic()
        log.info("asked worker %s-%d to stop", self.name, slot, extra={"slot": slot})

    def _reap(self) -> None:
        """Forget exited workers; kill those that overstay their stop grace period."""
        now = time.monotonic()
        for slot, worker in list(self._workers.items()):
            process = worker.process
            if process.is_alive():
                overdue = (worker.stopping_since is not None
                           and now - worker.stopping_since > self.stop_grace_s)
                if overdue:
                    log.warning("worker %s-%d ignored its stop for %g s; killing it",
                                self.name, slot, self.stop_grace_s, extra={"slot": slot})
                    process.kill()
                continue
            process.join(0)
            if worker.stopping_since is None:
                log.warning("worker %s-%d exited unexpectedly (code %s)", self.name, slot,
                            process.exitcode, extra={"slot": slot})
            process.close()
            del self._workers[slot]


class Ec2Provider:
    """App-tier workers as EC2 instances tagged `facereel-role=<tag_value>` and named
    `<tag_value>-instance-<n>` (`app-tier-instance-1`, ... by default)."""

    def __init__(self, client: Any, image_id: str, instance_type: str = "t3.micro",
                 tag_value: str = "app-tier", user_data: str = "",
                 subnet_id: str | None = None, key_name: str | None = None) -> None:
        self.client = client
        self.image_id = image_id
        self.instance_type = instance_type
        self.tag_value = tag_value
        self.user_data = user_data
        self.subnet_id = subnet_id
        self.key_name = key_name
        self._name = re.compile(re.escape(f"{tag_value}-instance-") + r"(\d+)")

    def instances(self) -> list[dict[str, Any]]:
        """This tier's pending and running instances (as describe_instances returns them)."""
        filters = [{"Name": f"tag:{ROLE_TAG}", "Values": [self.tag_value]},
                   {"Name": "instance-state-name", "Values": ACTIVE_STATES}]
        found: list[dict[str, Any]] = []
        for page in self.client.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                found.extend(reservation.get("Instances", []))
        return found

    def count(self) -> int:
        return len(self.instances())

    def stop_all(self, timeout_s: float = 0.0) -> None:
        """Terminate every instance of this tier (the web tier is shutting down: nothing is
        left running, and paid for, without anyone to send it requests)."""
        self.scale_to(0)

    def scale_to(self, target: int) -> None:
        if target < 0:
            raise ValueError(f"cannot scale to {target} instances")
        instances = self.instances()
        if len(instances) < target:
            self._launch(target - len(instances), {self._number(i) for i in instances})
        elif len(instances) > target:
            newest = sorted(instances, key=lambda i: (i["LaunchTime"], self._number(i)),
                            reverse=True)
            ids = [i["InstanceId"] for i in newest[:len(instances) - target]]
            self.client.terminate_instances(InstanceIds=ids)
            log.info("terminating %d %s instance(s): %s", len(ids), self.tag_value,
                     ", ".join(ids))

    def describe(self) -> str:
        return (f"EC2 instances tagged {ROLE_TAG}={self.tag_value} "
                f"({self.instance_type}, {self.image_id})")

    def _number(self, instance: dict[str, Any]) -> int:
        """n of the instance's `<tag_value>-instance-<n>` Name tag; 0 when it has none."""
        for tag in instance.get("Tags", []):
            match = self._name.fullmatch(tag["Value"]) if tag["Key"] == "Name" else None
            if match:
                return int(match.group(1))
        return 0

    def _launch(self, k: int, taken: set[int]) -> None:
        numbers = [n for n in range(1, len(taken) + k + 1) if n not in taken][:k]
        names = [f"{self.tag_value}-instance-{n}" for n in numbers]
        tags = [{"Key": ROLE_TAG, "Value": self.tag_value}, {"Key": "Name", "Value": names[0]}]
        extra: dict[str, Any] = {}
        if self.user_data:
            extra["UserData"] = self.user_data  # boto3 base64-encodes it
        if self.subnet_id:
            extra["SubnetId"] = self.subnet_id
        if self.key_name:
            extra["KeyName"] = self.key_name
        answer = self.client.run_instances(
            ImageId=self.image_id, InstanceType=self.instance_type, MinCount=k, MaxCount=k,
            ClientToken=uuid.uuid4().hex,  # a retried call must not launch twice
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **extra)
        ids = [i["InstanceId"] for i in answer["Instances"]]
        for instance_id, name in zip(ids[1:], names[1:], strict=False):
            self.client.create_tags(Resources=[instance_id],
                                    Tags=[{"Key": "Name", "Value": name}])
        log.info("launched %d %s instance(s): %s", len(ids), self.tag_value, ", ".join(ids))


def make_ec2(region: str, endpoint_url: str | None = None, access_key: str | None = None,
             secret_key: str | None = None) -> Any:
    """A boto3 EC2 client (bounded retries and timeouts); None falls back to the environment."""
    from facereel.ports.aws import boto_config, make_boto_client

    return make_boto_client("ec2", endpoint_url, region, access_key, secret_key, boto_config())
