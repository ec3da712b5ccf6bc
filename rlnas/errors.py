"""Exceptions that carry a message meant for a user (the CLI prints them on one line)."""
from __future__ import annotations


class RlnasError(Exception):
    """Base class of every error whose message is written for a user."""


class InvalidCandidate(RlnasError, ValueError):
    """A candidate (or its key) does not belong to the space it was checked against."""


class ConfigError(RlnasError, ValueError):
    """A configuration value, name or option is not acceptable."""


class StorageError(RlnasError):
    """The storage URL cannot be used, or the stored data contradict the request."""


class StudyNotFound(StorageError, KeyError):
    """No study of the given name exists in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DamagedStudy(StorageError):
    """A study's stored definition cannot be read (edited by hand, or a damaged file); ``name`` and
    ``study_id`` say which (its trials and lease are stored by that id)."""

    def __init__(self, message: str, name: str, study_id: int) -> None:
        super().__init__(message)
        self.name = name
        self.study_id = study_id


class DuplicateStudy(StorageError):
    """A study of the given name already exists with another definition."""


class SpaceExhausted(RlnasError):
    """Every network of the space is evaluated and repeats are answered from the store: no further
    trial can be made (the search ends there, finished)."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none: the reason a one-line
    error gives for an exception it replaces."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
