"""Every error type of the package survives pickling (worker processes send errors back; an
error that cannot be unpickled leaves a multiprocessing pool waiting forever)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import fullbody
from fullbody.jsonio import AnnotationError

#: How to build the error types whose constructor is not a single message.
SAMPLES = {AnnotationError: ("ann.json", "image 3", "width/height", "the file is 10x10")}


def _error_types() -> list[type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(fullbody.__path__, "fullbody."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("fullbody."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def test_the_package_defines_error_types():
    names = {t.__name__ for t in _error_types()}
    assert {"AnnotationError", "ImageReadError", "ImageNotFoundError", "TeacherError"} <= names


def test_every_error_type_survives_pickling():
    for cls in _error_types():
        err = cls(*SAMPLES.get(cls, ("some.file: something went wrong",)))
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and str(back) == str(err), cls
        assert vars(back) == vars(err), cls
