"""How many storage requests a video costs on S3 (SeaweedFS), counted by a botocore hook on the
real clients: the figure the pipeline's S3 overhead follows. Issue 7 took it from 15.25 per
clip (the shots as one object each, a manifest, a result object, existence checks) to 5:
split reads the upload and writes one part (analysis and shots); recognize needs no read when
the same process wrote the part (it is kept for the next stage), and a result's face crop is
a shot inside that part; publish writes the three output files. Read back from another
process, the part costs one more GET: 6."""

from __future__ import annotations

import collections
import uuid
from pathlib import Path
from typing import Any

from facereel.config import Settings
from facereel.pipeline.definition import run_stage
from facereel.pipeline.stages import Delivery
from tests.support import provisioned
from tests.support.servers import SeaweedServer
from tests.support.stages import context_of, ports_of, run_through


def test_a_short_video_costs_five_s3_requests(settings: Settings, seaweed: SeaweedServer,
                                               clips: dict[str, Path], tmp_path: Path,
                                               monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    suffix = uuid.uuid4().hex[:8]
    buckets = {which: {"name": f"{name}-{suffix}", "backend": "s3", "endpoint": seaweed.endpoint}
               for which, name in (("input", "in"), ("stage1", "st"), ("output", "out"))}
    remote = settings.with_overrides(data_dir=tmp_path, gallery=settings.storage.gallery_path,
                                     metadata_db=tmp_path / "meta.db", **buckets)
    ports = ports_of(remote)
    calls: collections.Counter[str] = collections.Counter()
    for store in (ports.input, ports.stage1, ports.output):
        provisioned.s3_bucket(store.client, store.bucket)  # type: ignore[attr-defined]
        store.client.meta.events.register(  # type: ignore[attr-defined]
            "before-call.s3", lambda model, **_: calls.update([model.name]))
    names = ("test_0", "test_4", "test_7")
    etags = {name: ports.input.put_file(f"{name}.mp4", clips[name]).etag for name in names}
    calls.clear()
    context = context_of(remote, ports)
    for name in names:
        run_through(context, "split", {"key": f"{name}.mp4", "etag": etags[name]})
    assert dict(calls) == {"GetObject": len(names), "PutObject": 4 * len(names)}
    info = ports.input.put_file("again.mp4", clips["test_4"])
    calls.clear()
    elsewhere = context_of(remote, ports)  # recognize in another process: reads the part
    (stage, body), = run_stage("split", Delivery({"key": "again.mp4", "etag": info.etag}),
                               context)
    run_through(elsewhere, stage, body)
    assert dict(calls) == {"GetObject": 2, "PutObject": 4}
    assert sorted(i.key for i in ports.output.list()) == sorted(
        f"{n}{ext}" for n in (*names, "again") for ext in (".csv", ".mp4.json", ".txt"))
