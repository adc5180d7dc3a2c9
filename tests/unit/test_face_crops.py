"""Which shot a person's face crop is: the first shot of their earliest track, found by its
time, so the two parts of a track that identification split between two people each point
to a shot of their own person."""

from __future__ import annotations

from facereel.core.recognize import PartialAnalysis
from facereel.core.tracking import Observation, Track
from facereel.pipeline.parts import FaceCrops, LoadedPart, split_face_key


def _track(shot_times: list[float], first_s: float) -> Track:
    return Track(id=7, observations=[Observation(t, (0, 0, 10, 10), 1.0) for t in shot_times],
                 shot_times=shot_times, first_s=first_s, last_s=shot_times[-1])


def test_each_part_of_a_split_track_points_to_its_own_shot() -> None:
    shots = [(0.0, "track007-shot00.jpg"), (1.0, "track007-shot01.jpg"),
             (5.0, "track007-shot02.jpg")]
    loaded = LoadedPart(PartialAnalysis("v.mp4"), [], {7: shots})
    crops = FaceCrops.of_parts([loaded], ["v/etag/part-0000.zip"])
    first, second = _track([0.0, 1.0], 0.0), _track([5.0], 3.0)  # parted between 1 s and 5 s
    assert split_face_key(crops([first])) == ("v/etag/part-0000.zip", "track007-shot00.jpg")
    assert split_face_key(crops([second])) == ("v/etag/part-0000.zip", "track007-shot02.jpg")
    assert crops([second, first]).endswith("shot00.jpg"), "the earliest track's shot"
