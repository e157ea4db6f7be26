"""Exceptions whose ``__init__`` takes other arguments than ``args`` (issue 12, item 10): defined in
the notebook (or importable), they round-trip with their attributes, where pickle and cloudpickle
fail on load with "missing 1 required keyword-only argument". This is what comes back when a shipped
cell raises.
"""
import pickle
import sys
import textwrap

import pytest

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import define, load_fresh

ERRORS = """
    class JobFailed(Exception):
        def __init__(self, msg, *, code):
            super().__init__(msg)
            self.code = code

    class StepFailed(JobFailed):
        def __init__(self, step, reason, *, code=2):
            super().__init__(f"step {step}: {reason}", code=code)
            self.step, self.reason = step, reason

    class Missing(OSError):  # (protocol 2 sends FileNotFoundError as OSError, as Python 2 had)
        def __init__(self, path, *, hint):
            super().__init__(2, "No such file or directory", path)
            self.hint = hint

    class Custom(Exception):
        def __init__(self, value, *, scale):
            super().__init__(value)
            self.value = value * scale

        def __reduce__(self):  # its own way of pickling: kept
            return type(self)._again, (self.value,)

        @classmethod
        def _again(cls, value):
            return cls(value, scale=1)
"""

CHECK = """
job, step, missing, custom = obj
try:
    raise step
except obj[0].__class__ as caught:  # a StepFailed is a JobFailed
    same = caught is step
result = [type(job).__name__, str(job), job.args, job.code,
          str(step), step.step, step.reason, step.code, isinstance(step, type(job)), same,
          isinstance(missing, OSError), missing.errno, missing.filename, missing.hint,
          missing.strerror, custom.value]
"""

EXPECTED = ["JobFailed", "job 7 failed", ("job 7 failed",), 42,
            "step load: no input", "load", "no input", 2, True, True,
            True, 2, "/data/x.csv", "check the mount", "No such file or directory", 30]


def _errors(ns):
    return [ns.JobFailed("job 7 failed", code=42), ns.StepFailed("load", "no input"),
            ns.Missing("/data/x.csv", hint="check the mount"), ns.Custom(10, scale=3)]


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_notebook_exceptions_with_keyword_only_and_extra_arguments(protocol):
    payload = cloudpickle.dumps(_errors(define(ERRORS)), protocol=protocol)
    assert load_fresh(payload, CHECK) == EXPECTED


def test_exception_keeps_its_attributes_and_notes_but_not_its_traceback():
    ns = define(ERRORS)
    error = ns.JobFailed("with notes", code=5)
    error.extra = {"rows": [1, 2]}
    if sys.version_info >= (3, 11):
        error.add_note("while loading day 3")
    try:
        raise error
    except ns.JobFailed:
        pass  # it now has a traceback, which does not travel
    check = "[obj.code, obj.extra, getattr(obj, '__notes__', None), obj.__traceback__]"
    notes = ["while loading day 3"] if sys.version_info >= (3, 11) else None
    assert load_fresh(cloudpickle.dumps(error), check) == [5, {"rows": [1, 2]}, notes, None]


def test_importable_exception_class_travels_by_reference_and_loads(tmp_path):
    (tmp_path / "jobs_errors.py").write_text(textwrap.dedent(ERRORS))
    sys.path.insert(0, str(tmp_path))
    try:
        import jobs_errors
        payload = cloudpickle.dumps({"errors": _errors(jobs_errors)})
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("jobs_errors", None)
    assert b"jobs_errors" in payload  # the class itself by reference
    check = f"obj = obj['errors']\n{CHECK}\nresult.append(type(obj[0]).__module__)"
    assert load_fresh(payload, check, sys_path=[tmp_path]) == EXPECTED + ["jobs_errors"]
