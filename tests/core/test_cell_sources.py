"""Code compiled from sources that exist only in memory (issue 12, item 7).

A notebook kernel compiles each cell under a file name in a folder named after its process
(ipykernel: ``<tmp>/ipykernel_<pid>/<hash>.py``) and keeps the cell's lines in ``linecache`` only.
The same cell must pickle to the same bytes in two such processes, and a traceback raised on the
target must show the cell's own lines. Here each "kernel" is a fresh script that compiles a cell
the way ipykernel does (the real kernels are in ``tests/ship/test_cell_bytes.py``).
"""
import os
import subprocess
import sys
import textwrap

from tests.fresh import CHECKOUT, load_fresh, run_script

CELL = '''
import math

RADIUS = 2.0

def area(scale):
    if scale < 0:
        raise ValueError(f"negative scale {scale} for radius {RADIUS}")
    return math.pi * (RADIUS * scale) ** 2

class Circle:
    def __init__(self, r):
        self.r = r

    def check(self):
        assert self.r > 0, "a circle needs a positive radius"
        return self.r
'''

KERNEL = """
    import hashlib, linecache, os, sys, tempfile
    import cloudpickle_ipy.core as cloudpickle

    cell = sys.stdin.read()
    # What ipykernel does with a cell: a file name in a folder named after this process, and the
    # lines in linecache only.
    folder = os.path.join(tempfile.gettempdir(), f"PREFIX_{os.getpid()}")
    name = os.path.join(folder, hashlib.sha1(cell.encode()).hexdigest()[:8] + ".py")
    linecache.cache[name] = (len(cell), None, cell.splitlines(keepends=True), name)
    exec(compile(cell, name, "exec"), globals())
    sys.stdout.buffer.write(cloudpickle.dumps([area, Circle, Circle(3)]))
"""


def _kernel(prefix="ipykernel", cell=CELL):
    return _run(KERNEL.replace("PREFIX", prefix), cell.encode())


def _run(script, stdin):
    """Run ``script`` in a new interpreter fed ``stdin`` (bytes); return its standard output."""
    env = dict(os.environ, PYTHONPATH=str(CHECKOUT))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], input=stdin,
                          capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def test_same_cell_gives_same_bytes_in_two_kernels_without_their_folder():
    first, second = _kernel(), _kernel()
    assert first == second
    assert b"ipykernel_" not in first and str(os.getpid()).encode() not in first
    assert b"<ipykernel>/" in first
    check = "area, circle, c = obj\nresult = [round(area(1), 4), c.check(), circle(5).check()]"
    assert load_fresh(first, check) == [12.5664, 3, 5]


def test_traceback_on_the_target_shows_the_cells_lines():
    payload = _kernel()
    check = """
import traceback
area, circle, c = obj
shown = []
for fail in (lambda: area(-1), lambda: circle(-2).check()):
    try:
        fail()
    except (ValueError, AssertionError):
        shown.append(traceback.format_exc())
result = shown
"""
    value_error, assertion = load_fresh(payload, check)
    assert 'raise ValueError(f"negative scale {scale} for radius {RADIUS}")' in value_error
    assert 'assert self.r > 0, "a circle needs a positive radius"' in assertion
    assert '<ipykernel>/' in value_error and ", line 8, in area" in value_error


def test_a_loaded_cell_function_pickles_again_to_the_same_bytes():
    payload = _kernel()
    again = _run("""
        import pickle, sys
        import cloudpickle_ipy.core as cloudpickle
        sys.stdout.buffer.write(cloudpickle.dumps(pickle.loads(sys.stdin.buffer.read())))
    """, payload)
    assert again == payload


def test_other_in_memory_names_keep_their_name_and_carry_their_lines():
    payload = _kernel(prefix="xpython")  # another kernel's folder, named after the pid too
    assert b"<xpython>/" in payload and _kernel(prefix="xpython") == payload
    ipython = run_script("""
        import linecache, sys
        import cloudpickle_ipy.core as cloudpickle
        name = "<ipython-input-3-0123abcd>"
        cell = "def twice(x):\\n    return 2 * x + undefined\\n"
        linecache.cache[name] = (len(cell), None, cell.splitlines(keepends=True), name)
        exec(compile(cell, name, "exec"), globals())
        generic = eval(compile("lambda: missing", "<string>", "eval"))
        sys.stdout.buffer.write(cloudpickle.dumps([twice, generic]))
    """)
    check = """
import traceback
twice, generic = obj
try:
    twice(1)
except NameError:
    shown = traceback.format_exc()
result = [twice.__code__.co_filename, "return 2 * x + undefined" in shown,
          generic.__code__.co_filename]
"""
    assert load_fresh(ipython, check) == ["<ipython-input-3-0123abcd>", True, "<string>"]
