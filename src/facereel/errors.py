"""Errors that carry a stable, machine-readable code next to a human message.

Every failure a user can cause (a broken video, an unsafe pickle, a gallery made by another
embedder) is raised as a `FacereelError`; callers turn it into an `error` result record with
`code` and `message`, so one bad input never stops a batch.
"""

from __future__ import annotations


class FacereelError(Exception):
    """A failure with a stable `code` (for scripts) and a clear `message` (for people)."""

    code: str = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class MediaError(FacereelError):
    """The input file cannot be used as a video or image (empty, truncated, not media...)."""

    code = "media_error"


class GalleryError(FacereelError):
    """A gallery cannot be read, written, or combined (wrong embedder, bad file...)."""

    code = "gallery_error"


class UnsafePickleError(GalleryError):
    """A pickle asked to load something other than plain containers and numpy arrays."""

    code = "unsafe_pickle"


class ModelNotAvailableError(FacereelError):
    """A backend's weights or runtime are not installed; says how to provide them."""

    code = "model_not_available"


class ConfigError(FacereelError):
    """A setting has a value that cannot work."""

    code = "config_error"
