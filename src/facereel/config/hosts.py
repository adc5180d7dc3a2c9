"""The sections of `Settings` read by one host each (`config.sections` lists them all):

    openfaas     the OpenFaaS functions (where their secrets are) and the monitor invoking them
    deploy       serverless hosts (AWS Lambda): which stage a function runs, how it hands on
    ray          the Ray engine: which engine runs `recognize` and `up`, the cluster to join,
                 how many actors and how busy each is kept
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator

from facereel.config.base import FROZEN


class OpenFaasSettings(BaseModel):
    """The OpenFaaS host: where the functions find their secrets, and how the bucket monitor
    (`facereel watch --invoke URL`) calls them."""

    model_config = FROZEN

    openfaas_secrets: Path = Field(Path("/var/openfaas/secrets"), description="folder of the "
                                   "functions' OpenFaaS secrets (one file per secret)")
    invoke_key: SecretStr = Field(SecretStr(""), description="API key `facereel watch "
                                  "--invoke` sends to the function (Authorization: Bearer)")
    invoke_timeout: float = Field(900.0, gt=0, description="seconds a synchronous invocation "
                                  "may take (the function runs a whole video)")
    invoke_attempts: int = Field(5, ge=1, description="tries per upload and round on connection "
                                 "errors, 5xx and 429 (backoff from retry_backoff, doubling)")


class DeploySettings(BaseModel):
    """What a serverless host (an AWS Lambda function) needs beyond the pipeline section:
    which stage it runs and how it hands a stage's messages to the next one."""

    model_config = FROZEN

    stage: str = Field("", description="the stage this function runs (FACEREEL_STAGE); empty: "
                       "from the event (an upload starts the pipeline, a queue names its stage)")
    invoke_mode: Literal["queue", "chain"] = Field(
        "queue", description="queue: next messages go to the stage queues; chain: the next "
        "stage's function is invoked asynchronously (the original deployment's chain)")
    function_prefix: str = Field("facereel", description="chain mode: stage S runs in the "
                                 "function <prefix>-<S>")
    lambda_endpoint: str | None = Field(None, description="Lambda API endpoint (tests)")

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        from facereel.pipeline.definition import STAGE_NAMES, stage

        if not value:
            return value
        try:
            return stage(value).name
        except KeyError:
            raise ValueError(f"no stage {value!r}; stages: {', '.join(STAGE_NAMES)}") from None

    def function_name(self, stage_name: str) -> str:
        return f"{self.function_prefix}-{stage_name}"


class RaySettings(BaseModel):
    """The Ray engine (`recognize --engine ray`, `up --engine ray`): which cluster, how many
    actors (each a worker process holding the models once) and how busy each is kept."""

    model_config = FROZEN

    engine: Literal["local", "ray"] = Field("local", description="what runs recognize and up: "
                                            "local processes, or actors on a Ray cluster")
    ray_address: str = Field("", description="Ray cluster to join (host:port, or auto); empty: "
                             "start a local Ray on this machine for the run")
    ray_actors_min: int = Field(1, ge=0, description="up --engine ray: stage actors kept when "
                                "the queues are empty")
    ray_actors_max: int = Field(0, ge=0, description="actors at most (0 = one per CPU of the "
                                "cluster, counted at start)")
    ray_cpus_per_actor: float = Field(1.0, gt=0, description="CPUs Ray reserves per actor")
    ray_inflight: int = Field(2, ge=1, description="calls queued per actor: with 2 an actor "
                              "starts its next video as soon as one ends")
    ray_backlog_per_actor: float = Field(4.0, gt=0, description="up --engine ray: queued "
                                         "messages one actor is expected to absorb")
    ray_scale_in_delay: float = Field(30.0, ge=0, description="up --engine ray: seconds of "
                                      "low backlog before actors are stopped")
    ray_object_store_mb: int = Field(256, ge=64, description="object store of a Ray started "
                                     "locally (results are small: no need for 30% of memory)")
