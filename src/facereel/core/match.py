"""Open-set identity decisions: nearest enrolled person, or `unknown`, from several frames.

Single frames are noisy, so a track's identity is the person with the smallest *median*
distance over the embeddings taken of it. It is accepted when that median is within
`threshold`, or within `threshold + clear_slack` when the runner-up is at least `clear_margin`
farther (a clear winner among several enrolled people: compression pushes some true matches just
past the threshold while their runner-up stays far). The slack is relative to the threshold, so
tightening the threshold always tightens the answer; the defaults are calibrated in the README.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facereel.core.gallery import Gallery
from facereel.core.types import FloatArray


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    threshold: float = 0.6  # accept a person when the median distance is at most this
    clear_slack: float = 0.02  # ...or this much more when the runner-up is far behind
    clear_margin: float = 0.1  # how much farther the runner-up must be for a clear winner

    def __post_init__(self) -> None:
        if self.threshold <= 0 or self.clear_slack < 0 or self.clear_margin < 0:
            raise ValueError(f"invalid match policy {self}")


@dataclass(frozen=True, slots=True)
class Decision:
    person: str | None  # None = unknown
    distance: float  # median distance to `nearest` (inf with an empty gallery)
    nearest: str | None
    votes: int
    runner_up: float = float("inf")  # median distance to the second-nearest person

    @property
    def similarity(self) -> float:
        return similarity(self.distance)


def similarity(distance: float) -> float:
    """A 0..1 score for people: 1 - distance/2 (distance 0.6 -> 0.7), clipped."""
    return float(min(1.0, max(0.0, 1.0 - distance / 2.0)))


def decide(gallery: Gallery, embeddings: Sequence[FloatArray], policy: MatchPolicy) -> Decision:
    if not embeddings or not gallery.people:
        return Decision(None, float("inf"), None, len(embeddings))
    distances = gallery.person_distances(np.asarray(embeddings, dtype=np.float32))
    medians = np.median(distances, axis=0)
    order = np.argsort(medians)
    distance = float(medians[order[0]])
    runner_up = float(medians[order[1]]) if len(order) > 1 else float("inf")
    nearest = gallery.people[int(order[0])]
    clear_winner = (
        len(order) > 1
        and distance <= policy.threshold + policy.clear_slack
        and runner_up - distance >= policy.clear_margin
    )
    person = nearest if distance <= policy.threshold or clear_winner else None
    return Decision(person, distance, nearest, len(embeddings), runner_up)



def claimant(gallery: Gallery, person: str, vector: FloatArray,
             policy: MatchPolicy) -> Decision | None:
    """Whether a face about to be enrolled as `person` already matches somebody else (the
    decision naming them), so enrolment never takes over another identity unnoticed."""
    decision = decide(gallery.without(person), [vector], policy)
    return decision if decision.person is not None else None


def claim_message(decision: Decision) -> str:
    return (f"this face already matches {decision.person!r} "
            f"(distance {decision.distance:.2f})")
