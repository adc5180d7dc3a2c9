"""OpenFaaS function `face-recognition-http`: the result document of an object, on demand."""

from facereel.deploy.openfaas import face_recognition_http as handle

__all__ = ["handle"]
