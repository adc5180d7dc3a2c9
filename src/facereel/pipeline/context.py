"""What stages need, built lazily once per host process: the ports, the face models, the
gallery (re-read when a new version appears, within the storage section's staleness bound)
and the options of the recognition and pipeline sections."""

from __future__ import annotations

from facereel.config.sections import PipelineSettings, RecognitionSettings
from facereel.core.faces import FaceModels
from facereel.core.gallery import Gallery
from facereel.core.recognize import RecognizeOptions, Recognizer
from facereel.pipeline.parts import PartStore
from facereel.pipeline.wiring import Ports
from facereel.ports.gallery import GalleryCache
from facereel.ports.metadata import MetadataLookup


class StageContext:
    def __init__(self, ports: Ports, recognition: RecognitionSettings,
                 pipeline: PipelineSettings, gallery_refresh_s: float) -> None:
        self.ports = ports
        self.recognition = recognition
        self.pipeline = pipeline
        self.galleries = GalleryCache(ports.gallery, gallery_refresh_s)
        self.options: RecognizeOptions = recognition.recognize_options()
        self.metadata = MetadataLookup(ports.metadata)
        self.parts = PartStore(ports.stage1)
        self._models: FaceModels | None = None
        self._recognizer: Recognizer | None = None

    @property
    def models(self) -> FaceModels:
        if self._models is None:
            self._models = FaceModels(self.recognition.face_config()).load()
        return self._models

    @property
    def gallery(self) -> Gallery:
        return self.galleries.current()

    def recognizer(self) -> Recognizer:
        """A recognizer over the current gallery (rebuilt when the gallery changes)."""
        gallery = self.gallery
        if self._recognizer is None or self._recognizer.gallery is not gallery:
            self._recognizer = Recognizer(self.models, gallery, self.options, self.metadata)
        return self._recognizer
