"""What the Lambda handler costs: cold start (import + the first invocation, which loads the
models), warm milliseconds per video, peak memory, and the price of 1000 videos.

The handler runs in a fresh subprocess (`--child`) as one function doing every stage (stage
from the queue ARN) on embedded storage, so the figures are the handler's compute, not a
storage server's: each of the 8 clips goes split -> recognize -> publish as SQS events, the
first clip cold, then every clip again warm, for `--rounds` rounds.

Prices (x86, US East N. Virginia), as found on 2026-11-29:
- Lambda duration $0.0000166667 per GB-second (first 6 billion GB-s a month) and requests
  $0.20 per million: https://aws.amazon.com/lambda/pricing/ (also summarised at
  https://cloudchipr.com/blog/aws-lambda-pricing, "AWS Lambda Pricing Breakdown 2024").
- Amazon Rekognition Video, stored video face search: $0.10 per minute of video analysed:
  https://aws.amazon.com/rekognition/pricing/ (the figure AWS has listed for stored video
  analysis; not re-read from that page here, which was not reachable from this machine).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO_ROOT, data_dir

sys.path.insert(0, str(REPO_ROOT))
from tests.support.aws_shapes import sqs_event, sqs_record

GB_SECOND = 0.0000166667
PER_REQUEST = 0.20 / 1_000_000
REKOGNITION_PER_MINUTE = 0.10
MEMORY_SIZES_MB = (512, 1024, 1536, 1769, 2048, 3008)  # 1769 MB: one full vCPU


class Context:
    function_name = "facereel-bench"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:facereel-bench"
    aws_request_id = "bench"


def _run_video(handler: Any, key: str) -> tuple[float, int]:
    """One video through split -> recognize -> publish, each stage one SQS invocation (the
    next message taken from the local queue the handler sent it to); (seconds, invocations)."""
    from facereel.deploy.aws_lambda import host
    from facereel.pipeline.definition import STAGE_NAMES

    ports = host().ports if invocations_done() else None
    etag = _etag(key)
    messages: list[tuple[str, dict[str, Any]]] = [("split", {"key": key, "etag": etag})]
    started, invocations = time.perf_counter(), 0
    while messages:
        stage, body = messages.pop(0)
        event = sqs_event(sqs_record(f"facereel-{stage}", json.dumps(body), f"m{invocations}"))
        answer = handler(event, Context())
        assert answer == {"batchItemFailures": []}, answer
        invocations += 1
        ports = ports or host().ports
        for name in STAGE_NAMES:
            for message in ports.queues[name].receive(10):
                messages.append((name, message.body))
                ports.queues[name].ack(message)
    return time.perf_counter() - started, invocations


def invocations_done() -> bool:
    import facereel.deploy.aws_lambda as module

    return module._HOST is not None


def _etag(key: str) -> str:
    from facereel.ports.objectstore.local import LocalObjectStore

    store = LocalObjectStore(Path(os.environ["FACEREEL_DATA_DIR"]) / "buckets" / "input",
                             "input")
    info = store.head(key)
    assert info is not None
    return info.etag


def child(videos: list[str], rounds: int) -> None:
    started = time.perf_counter()
    from facereel.deploy.aws_lambda import handler

    import_s = time.perf_counter() - started
    first_s, invocations = _run_video(handler, videos[0])
    warm = [_run_video(handler, key)[0] for _ in range(rounds) for key in videos]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"import_s": import_s, "first_video_s": first_s, "warm_s": warm,
                      "invocations_per_video": invocations, "peak_mb": peak_mb}))


def main() -> None:
    data = data_dir()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        env = {**os.environ, "FACEREEL_DATA_DIR": str(state), "FACEREEL_QUEUE_PREFIX": "facereel",
               "FACEREEL_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
        subprocess.run([sys.executable, "-m", "facereel", "gallery", "import",
                        str(data / "encoding"), "--data-dir", str(state)], env=env, check=True,
                       capture_output=True)
        (state / "buckets" / "input").mkdir(parents=True)
        videos = []
        for clip in sorted((data / "videos").glob("*.mp4")):
            (state / "buckets" / "input" / clip.name).write_bytes(clip.read_bytes())
            videos.append(clip.name)
        out = subprocess.run([sys.executable, __file__, "--child", "3", *videos], env=env,
                             check=True, capture_output=True, text=True).stdout
    report(json.loads(out.strip().splitlines()[-1]))


def report(found: dict[str, Any]) -> None:
    warm_ms = statistics.median(found["warm_s"]) * 1000
    cold_s = found["import_s"] + found["first_video_s"]
    memory = next(m for m in MEMORY_SIZES_MB if m >= 1.3 * found["peak_mb"] and m >= 1769)
    per_video = (warm_ms / 1000 * memory / 1024 * GB_SECOND
                 + found["invocations_per_video"] * PER_REQUEST)
    print(f"cold start: import {found['import_s']:.2f} s + first video "
          f"{found['first_video_s']:.2f} s = {cold_s:.2f} s")
    print(f"warm: {warm_ms:.0f} ms per video (median of {len(found['warm_s'])}), "
          f"{found['invocations_per_video']} invocations per video")
    print(f"peak RSS {found['peak_mb']:.0f} MiB -> memory size {memory} MB")
    cold_cost = cold_s * memory / 1024 * GB_SECOND
    print(f"Lambda: ${per_video * 1000:.4f} per 1000 videos (warm; + ${cold_cost:.6f} per "
          "cold start)")
    print(f"Rekognition Video face search: ${REKOGNITION_PER_MINUTE * 1000:.2f} per 1000 "
          "videos of up to a minute (billed per minute started)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[3:], int(sys.argv[2]))
    else:
        main()
