"""The sections of `Settings`: each component receives the section it reads.

    recognition  models, detection, sampling, matching (the core)
    storage      buckets, queues, metadata tables, the gallery, the data directory (the ports)
    pipeline     workers, windows, time budget, polling, retries (the hosts)
    http         the API server: address, keys, upload limits
    image_tier   the image web tier: timeouts, app-tier workers and their autoscaling
    openfaas     the OpenFaaS functions (where their secrets are) and the monitor invoking them
    deploy       serverless hosts (AWS Lambda): which stage a function runs, how it hands on
    ray          the Ray engine: which engine runs `recognize` and `up`, the cluster to join,
                 how many actors and how busy each is kept
    memory       the face memory's retention and index upkeep, the audit log

(openfaas, deploy and ray, each read by one host, are defined in `config.hosts`.) Every
field is also reachable by its flat name (`FACEREEL_THRESHOLD`, `Settings(workers=2)`), so
field names are unique across sections (`config.flat_names` checks it at import).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from facereel.config.base import FROZEN
from facereel.config.hosts import DeploySettings, OpenFaasSettings, RaySettings

if TYPE_CHECKING:  # the core is imported where it is used: settings load in milliseconds
    from facereel.core.faces import FaceConfig
    from facereel.core.match import MatchPolicy
    from facereel.core.recognize import RecognizeOptions

DEFAULT_BUCKETS = {"input": "input", "stage1": "stage-1", "output": "output"}
SCOPES = ("read", "write", "admin")  # each allows what the ones before it allow
BARE_KEY_SCOPE = "write"
log = logging.getLogger(__name__)


def _deprecated(message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    log.warning("%s", message)


def secret(value: SecretStr | None) -> str | None:
    """The plain value of an optional secret (for the clients that need it, never for logs)."""
    return value.get_secret_value() if value is not None else None


class RecognitionSettings(BaseModel):
    """What the core needs: which models, how to sample frames, how to decide who it is."""

    model_config = FROZEN

    models_dir: Path | None = Field(None, description="dlib model files (default: the package)")
    cache_dir: Path | None = Field(None, description="converted models (default "
                                   "~/.cache/facereel)")
    detector: str = Field("retinaface", description="face detector: retinaface or hog")
    detector_options: dict[str, Any] = Field(
        default_factory=dict, description="the detector's own options, as a JSON object "
        "(hog: min_score, face_score, upsample; retinaface: min_score, presence_score, nms_iou, "
        "model)")
    embedder: str = "dlib-resnet"
    runtime: str = "onnx"
    detect_size: int | None = Field(None, ge=0, description="short side the detector sees; "
                                    "unset = the detector's preferred size, 0 = full size")
    min_face_px: int = Field(0, ge=0)
    # deprecated: HOG's own options under their old flat names (FACEREEL_MIN_SCORE, ...)
    min_score: float | None = Field(None, description="deprecated: hog min_score")
    face_score: float | None = Field(None, description="deprecated: hog face_score")
    upsample: int | None = Field(None, ge=0, le=3, description="deprecated: hog upsample")
    sampling: str = "adaptive"
    interval: float = Field(0.5, gt=0, description="seconds between full-frame detections")
    precision: float = Field(0.25, gt=0, description="target precision of appearance times (s)")
    threshold: float = Field(0.6, gt=0, description="open-set match threshold (distance)")
    clear_slack: float = Field(0.02, ge=0, description="a clear winner may be this much past "
                               "the threshold")
    clear_threshold: float | None = Field(None, gt=0, description="deprecated: absolute clear-"
                                          "winner threshold; means clear_slack = it - threshold")
    clear_margin: float = Field(0.1, ge=0, description="runner-up margin of a clear winner")
    appearance_gap: float = Field(1.0, ge=0)
    votes: int = Field(2, ge=1, description="shots embedded per face (median decides)")
    max_pixels: int = Field(8192 * 8192, gt=0)

    @field_validator("sampling")
    @classmethod
    def _valid_sampling(cls, value: str) -> str:
        from facereel.core.sampling import parse_sampling
        from facereel.errors import ConfigError

        try:
            parse_sampling(value)
        except ConfigError as exc:  # a ValueError is what pydantic reports as invalid
            raise ValueError(exc.message) from exc
        return value

    @property
    def model_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "facereel"

    def face_config(self) -> FaceConfig:
        from facereel.core.faces import FaceConfig
        from facereel.core.faces.base import BackendOptions

        options = BackendOptions(models_dir=self.models_dir, threads=1,
                                 cache_dir=self.model_cache_dir)
        detector_options = {**self._legacy_hog_options(), **self.detector_options}
        return FaceConfig(self.detector, self.embedder, self.runtime, self.detect_size,
                          self.min_face_px, options, tuple(sorted(detector_options.items())))

    def _legacy_hog_options(self) -> dict[str, Any]:
        """FACEREEL_MIN_SCORE / FACEREEL_FACE_SCORE / FACEREEL_UPSAMPLE: HOG's options under
        their old flat names (detector_options wins over them); ignored, with a warning, when
        another detector is chosen, since their units are HOG's SVM margin."""
        legacy = {name: value for name, value in (("min_score", self.min_score),
                  ("face_score", self.face_score), ("upsample", self.upsample))
                  if value is not None}
        if not legacy:
            return {}
        names = ", ".join(f"FACEREEL_{name.upper()}" for name in legacy)
        if self.detector != "hog":
            _deprecated(f"{names} only apply to detector 'hog' and are ignored with detector "
                        f"'{self.detector}'; set FACEREEL_DETECTOR_OPTIONS instead")
            return {}
        _deprecated(f"{names} are deprecated: use FACEREEL_DETECTOR_OPTIONS (a JSON object)")
        return legacy

    @property
    def effective_clear_slack(self) -> float:
        """clear_slack, or the deprecated absolute FACEREEL_CLEAR_THRESHOLD turned into one."""
        if self.clear_threshold is None:
            return self.clear_slack
        _deprecated("FACEREEL_CLEAR_THRESHOLD is deprecated: use FACEREEL_CLEAR_SLACK (how far "
                    "past FACEREEL_THRESHOLD a clear winner may be)")
        return max(0.0, self.clear_threshold - self.threshold)

    def match_policy(self) -> MatchPolicy:
        from facereel.core.match import MatchPolicy

        return MatchPolicy(threshold=self.threshold, clear_slack=self.effective_clear_slack,
                           clear_margin=self.clear_margin)

    def recognize_options(self) -> RecognizeOptions:
        from facereel.core.recognize import RecognizeOptions
        from facereel.core.sampling import parse_sampling
        from facereel.core.shots import VotePolicy

        return RecognizeOptions(
            sampling=parse_sampling(self.sampling, self.interval, self.precision),
            policy=self.match_policy(),
            presence_score=self.face_config().presence_score,
            votes=VotePolicy(max_votes=self.votes),
            appearance_gap_s=self.appearance_gap,
            max_pixels=self.max_pixels,
        )


class BucketSettings(BaseModel):
    """Where one bucket lives: a folder under DATA_DIR/buckets, or S3 (AWS or compatible)."""

    model_config = FROZEN

    name: str
    backend: Literal["local", "s3"] = "local"
    endpoint: str | None = None  # Ceph RGW, SeaweedFS, MinIO...; None = AWS
    region: str | None = None  # default: aws_region
    access_key: str | None = None  # default: aws_access_key
    secret_key: SecretStr | None = None


class StorageSettings(BaseModel):
    """The ports: three buckets, the queues, the metadata tables, the gallery, and the data
    directory where every embedded backend (folders, SQLite) keeps its state."""

    model_config = FROZEN

    data_dir: Path = Field(Path("facereel-data"), description="where embedded state lives")
    input: BucketSettings = BucketSettings(name="input")
    stage1: BucketSettings = BucketSettings(name="stage-1")
    output: BucketSettings = BucketSettings(name="output")
    gallery: Path | None = Field(None, description="gallery file (default DATA_DIR/gallery.npz)")
    gallery_bucket: Literal["", "stage1", "output", "input"] = Field(
        "", description="keep the gallery in this bucket (under gallery/) instead of a file; "
        "default: stage1 when that bucket is on S3, else the local file")
    gallery_refresh: float | None = Field(
        None, ge=0, description="hosts look for a new gallery version at most this often "
        "(seconds): the staleness bound. Default: 0 for a gallery file (a stat per delivery), "
        "5 for a gallery in a bucket (a HEAD request per look)")
    metadata_db: Path | None = Field(None, description="SQLite file (default DATA_DIR/facereel.db)")
    queue_backend: Literal["sqlite", "sqs"] = "sqlite"
    queue_prefix: str = Field("facereel", description="SQS queue names start with this")
    sqs_endpoint: str | None = None
    visibility: float = Field(60.0, gt=0, description="queue visibility timeout (s); a running "
                              "stage's heartbeat extends it every third of it")
    max_attempts: int = Field(5, ge=1, description="deliveries before a message is dead")
    metadata_backend: Literal["sqlite", "dynamodb"] = "sqlite"
    table_name: str = Field("facereel-people", description="DynamoDB people table")
    videos_table: str = Field("facereel-videos", description="DynamoDB video status table")
    windows_table: str = Field("facereel-windows", description="DynamoDB table joining the "
                               "windows of long videos")
    person_videos_table: str = Field("facereel-person-videos", description="DynamoDB table "
                                     "of the videos each person's results name")
    faces_table: str = Field("facereel-faces", description="DynamoDB table of the face memory "
                             "(every face track of every video)")
    memory_db: Path | None = Field(None, description="SQLite file of the face memory (default "
                                   "DATA_DIR/memory.db)")
    dynamodb_endpoint: str | None = None
    aws_region: str = "us-east-1"
    aws_access_key: str | None = None
    aws_secret_key: SecretStr | None = None
    events_queue: str | None = Field(None, description="SQS queue receiving the input bucket's "
                                     "S3 event notifications (else the bucket is polled)")

    @field_validator("input", "stage1", "output", mode="before")
    @classmethod
    def _bucket_name(cls, value: Any, info: ValidationInfo) -> Any:
        """A partial bucket setting (e.g. only FACEREEL_INPUT__ENDPOINT) keeps the default name."""
        if isinstance(value, dict) and not value.get("name"):
            return {**value, "name": DEFAULT_BUCKETS[str(info.field_name)]}
        return value

    @property
    def gallery_path(self) -> Path:
        return self.gallery or self.data_dir / "gallery.npz"

    @property
    def metadata_path(self) -> Path:
        return self.metadata_db or self.data_dir / "facereel.db"

    @property
    def memory_path(self) -> Path:
        return self.memory_db or self.data_dir / "memory.db"

    @property
    def gallery_location(self) -> str:
        """`file`, or the name of the bucket field (`stage1`...) holding the gallery."""
        if self.gallery is not None:
            return "file"
        if self.gallery_bucket:
            return self.gallery_bucket
        return "stage1" if self.stage1.backend == "s3" else "file"

    @property
    def gallery_staleness(self) -> float:
        if self.gallery_refresh is not None:
            return self.gallery_refresh
        return 0.0 if self.gallery_location == "file" else 5.0

    def bucket(self, which: str) -> BucketSettings:
        found: BucketSettings = getattr(self, which)
        return found


class PipelineSettings(BaseModel):
    """How hosts run the stages: workers, windows of long videos, time budgets, polling."""

    model_config = FROZEN

    workers: int = Field(0, ge=0, description="worker processes; 0 = one per core")
    item_timeout: float = Field(900.0, gt=0, description="seconds one batch task may take")
    window: float = Field(60.0, ge=0, description="long videos are cut at keyframes into windows "
                          "of about this many seconds, whatever the number of workers (0 = "
                          "never cut)")
    stage_budget: float = Field(600.0, gt=0, description="seconds one stage run may take; "
                                "analysis stops with a `timeout` error past it")
    poll_interval: float = Field(1.0, gt=0, description="seconds between input bucket polls")
    settle: float = Field(1.0, ge=0, description="a file dropped into a local bucket is taken "
                          "once unchanged for this long")
    retry_backoff: float = Field(2.0, ge=0, description="first retry delay (s), doubling after")
    remember_faces: bool = Field(True, description="keep every face track of every video in "
                                 "the face memory (the `remember` stage); false: keep none")

    @property
    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)


class HttpSettings(BaseModel):
    """The API server inside `facereel up`."""

    model_config = FROZEN

    host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    port: int = Field(8000, ge=0, le=65535, description="HTTP port (0 = no HTTP server)")
    api_keys: SecretStr = Field(SecretStr(""), description="comma-separated API keys, each "
                                "optionally with its scope (`key:read`, `key:write`, "
                                "`key:admin`; a bare key is `write`); none = open, loopback "
                                "only")
    max_video_mb: float = Field(500.0, gt=0, description="largest accepted video upload")
    max_image_mb: float = Field(20.0, gt=0, description="largest accepted image upload")
    recognize_timeout: float = Field(900.0, gt=0, description="seconds /v1/recognize may wait")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection may take to "
                                  "send its request headers")
    body_timeout: float = Field(30.0, gt=0, description="seconds a request body may pause "
                                "between two chunks")

    @property
    def api_key_list(self) -> list[str]:
        """The keys themselves (their scopes left off)."""
        return [key for key, _ in self.api_key_scopes]

    @property
    def api_key_scopes(self) -> list[tuple[str, str]]:
        """(key, scope) of each key: `k:admin` is the key `k` with scope admin; a bare key is
        `write`, what keys could do before scopes (admin must be given on purpose)."""
        found = []
        for entry in (e.strip() for e in self.api_keys.get_secret_value().split(",")):
            key, sep, scope = entry.rpartition(":")
            if sep and key and scope in SCOPES:
                found.append((key, scope))
            elif entry:
                found.append((entry, BARE_KEY_SCOPE))
        return found


class ImageTierSettings(BaseModel):
    """The image web tier: request timeout and the app-tier workers the autoscaler sizes."""

    model_config = FROZEN

    image_timeout: float = Field(60.0, gt=0, description="seconds an image request may wait")
    app_workers_min: int = Field(1, ge=0, description="app-tier workers kept when idle")
    app_workers_max: int = Field(0, ge=0, description="app-tier workers at most (0 = cores)")
    backlog_per_worker: float = Field(4.0, gt=0, description="queued images per app worker")
    scale_in_delay: float = Field(20.0, ge=0, description="seconds of low load before scaling in")
    app_tier: Literal["local", "ec2"] = Field("local", description="where app-tier workers run: "
                                              "local processes, or EC2 instances")
    ec2_image_id: str = Field("", description="AMI of app-tier instances (app_tier=ec2); it "
                              "should start `facereel app-worker` at boot")
    ec2_instance_type: str = "t3.micro"
    ec2_user_data: str = Field("", description="user data (boot script) of app-tier instances")
    ec2_subnet_id: str | None = None
    ec2_key_name: str | None = None
    ec2_endpoint: str | None = None

    @property
    def app_workers_limit(self) -> int:
        return self.app_workers_max or (os.cpu_count() or 1)


class MemorySettings(BaseModel):
    """The face memory's upkeep and the audit log of who searched or forgot what."""

    model_config = FROZEN

    memory_retention_days: float = Field(0.0, ge=0, description="forget a video's faces this "
                                         "many days after it was processed (0 = keep them)")
    memory_index_interval: float = Field(30.0, ge=0, description="seconds between updates of "
                                         "the face index snapshot by `facereel up` (0 = never: "
                                         "run `facereel memory index`)")
    audit_log: Path | None = Field(None, description="JSON-lines audit log of searches, "
                                   "forgetting and enrolment (default DATA_DIR/audit.log)")
    strangers_eps: float = Field(0.5, gt=0, le=2, description="strangers are grouped when "
                                 "their faces are this close (median embeddings, Euclidean)")
    strangers_min_tracks: int = Field(3, ge=2, description="face tracks a group of strangers "
                                      "needs around a core track (the track included)")


SECTIONS: dict[str, type[BaseModel]] = {
    "recognition": RecognitionSettings,
    "storage": StorageSettings,
    "pipeline": PipelineSettings,
    "http": HttpSettings,
    "image_tier": ImageTierSettings,
    "openfaas": OpenFaasSettings,
    "deploy": DeploySettings,
    "ray": RaySettings,
    "memory": MemorySettings,
}
