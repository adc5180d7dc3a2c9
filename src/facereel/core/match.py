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

from facereel.core.gallery import Gallery, PersonDistances
from facereel.core.types import FloatArray

WIDEN = 4  # how much more of the index a search that could be wrong looks at next


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
    # median distance to the second-nearest person: exact when it decides (a clear winner);
    # otherwise a large gallery may answer a farther one than it has
    runner_up: float = float("inf")

    @property
    def similarity(self) -> float:
        return similarity(self.distance)


def similarity(distance: float) -> float:
    """A 0..1 score for people: 1 - distance/2 (distance 0.6 -> 0.7), clipped."""
    return float(min(1.0, max(0.0, 1.0 - distance / 2.0)))


def decide(gallery: Gallery, embeddings: Sequence[FloatArray], policy: MatchPolicy,
           exclude: str | None = None) -> Decision:
    """Who the face of `embeddings` is (leaving `exclude` out of the candidates).

    A large gallery is asked only for the people owning its index's nearest vectors (re-ranked
    exactly by person), with a bound on everyone else. When someone beyond the bound could
    still change the answer (be nearer, be accepted, or be the close runner-up that denies a
    clear winner), the search is redone exactly and widened until nobody can. So the person
    answered is exact matching's whenever the index found each embedding's nearest vectors
    (recall@1 1.000 on 1M synthetic faces, bench/index.py; not always so for real faces
    among synthetic ones: see the README). A stranger's `nearest` may be approximate:
    once nobody left out could be accepted, the nearest of the people found is answered."""
    if not embeddings or not len(gallery):
        return Decision(None, float("inf"), None, len(embeddings))
    queries = np.asarray(embeddings, dtype=np.float32)
    found = gallery.nearest_people(queries, exclude)
    while True:
        decision = _decision(found, policy, len(embeddings))
        clear = decision.person is not None and decision.distance > policy.threshold
        if _settled(decision, float(np.median(found.beyond)), policy, found.exact) and (
                found.exact or not clear):  # a clear winner is only trusted from exact search
            return decision
        found = gallery.nearest_people(queries, exclude, found.k * WIDEN if found.exact
                                       else found.k, exact=True)


def _decision(found: PersonDistances, policy: MatchPolicy, votes: int) -> Decision:
    if not found.people:
        return Decision(None, float("inf"), None, votes)
    medians = np.median(found.distances, axis=0)
    order = np.argsort(medians)
    distance = float(medians[order[0]])
    runner_up = float(medians[order[1]]) if len(order) > 1 else float("inf")
    nearest = found.people[int(order[0])]
    clear_winner = (
        len(order) > 1
        and distance <= policy.threshold + policy.clear_slack
        and runner_up - distance >= policy.clear_margin
    )
    person = nearest if distance <= policy.threshold or clear_winner else None
    return Decision(person, distance, nearest, votes, runner_up)


def _settled(decision: Decision, bound: float, policy: MatchPolicy, exact: bool = True) -> bool:
    """Whether people at `bound` or farther (in median: the ones not searched) could change
    `decision`: by being nearer, by being accepted, or by being a clear winner's runner-up.
    An approximate search's `bound` is no bound below it (its groups left unscanned may hold
    nearer vectors): "nobody" is trusted from it only when even its bound is out of reach."""
    top = policy.threshold + policy.clear_slack
    if decision.person is None:
        if decision.distance <= top and decision.runner_up == bound == float("inf"):
            return True
        if decision.distance <= top and decision.runner_up == float("inf"):
            return False  # one person found in the band: a runner-up could make it clear
        return bound > top or (exact and bound >= decision.distance)
    if decision.distance <= policy.threshold:
        return decision.distance <= bound
    return decision.distance + policy.clear_margin <= bound


def claimant(gallery: Gallery, person: str, vector: FloatArray,
             policy: MatchPolicy) -> Decision | None:
    """Whether a face about to be enrolled as `person` already matches somebody else (the
    decision naming them), so enrolment never takes over another identity unnoticed."""
    decision = decide(gallery, [vector], policy, exclude=person)
    return decision if decision.person is not None else None


def claim_message(decision: Decision) -> str:
    return (f"this face already matches {decision.person!r} "
            f"(distance {decision.distance:.2f})")
