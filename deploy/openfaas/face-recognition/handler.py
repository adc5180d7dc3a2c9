"""OpenFaaS function `face-recognition`: one uploaded object through every stage, in one call."""

from facereel.deploy.openfaas import face_recognition as handle

__all__ = ["handle"]
