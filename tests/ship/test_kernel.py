"""Push, pull, call and run on a real local kernel."""
import sys
import textwrap

import numpy as np
import pytest

import cloudpickle_ipy.core as core
from cloudpickle_ipy.ship import RemoteError, envelope
from tests.fresh import define


def test_agent_says_hello(kernel):
    assert kernel.agent["python"] == envelope.PYTHON and kernel.alive
    assert kernel.agent["pid"] != __import__("os").getpid()


def test_push_pull_data(kernel):
    data = {"ints": list(range(10)), "text": "é", "nested": ({1, 2}, b"\x00")}
    kernel.push(data=data)
    kernel.push({"other": 1.5}, more=None)
    assert kernel.pull("data") == data
    assert kernel.pull("other", "more") == (1.5, None)
    with pytest.raises(RemoteError, match="not defined on the target: nowhere"):
        kernel.pull("nowhere")


def test_lambdas_and_closures_travel_both_ways(kernel):
    def make_adder(n):
        def add(x):
            return x + n
        return add

    kernel.push(square=lambda x: x * x, add3=make_adder(3))
    assert kernel.run("square(add3(1))") == 16
    double = kernel.run("lambda x: x * 2")
    assert double(21) == 42
    assert kernel.pull("add3")(1) == 4


def test_interactive_class_round_trip(kernel):
    ns = define("""
        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

            def norm2(self):
                return self.x ** 2 + self.y ** 2
    """)
    kernel.push(p=ns.Point(3, 4))
    assert kernel.run("p.norm2(), type(p).__module__") == (25, "__main__")
    back = kernel.run("Point = type(p); Point(1, 2)")
    assert type(back) is ns.Point and back.norm2() == 5  # one class, not a copy


def test_call_by_value_function(kernel):
    ns = define("""
        import os
        def where(scale, offset=0):
            return os.getpid(), scale * 2 + offset
    """)
    pid, value = kernel.call(ns.where, 5, offset=1)
    assert value == 11 and pid == kernel.agent["pid"]


def test_run_relays_stdout_and_stderr(kernel, capsys):
    value = kernel.run(textwrap.dedent("""
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        from IPython.display import display
        display({"shown": 1})
        6 * 7
    """))
    out, err = capsys.readouterr()
    assert value == 42
    assert out == "to stdout\n{'shown': 1}\n" and err == "to stderr\n"


def test_run_ipython_syntax_and_no_last_expression(kernel):
    assert kernel.run("%time y = 5") is None
    assert kernel.pull("y") == 5


def test_run_error_shows_the_remote_traceback(kernel, capsys):
    code = "def fails(d):\n    return 1 / d\nprint('before')\nfails(0)\n"
    with pytest.raises(RemoteError) as info:
        kernel.run(code)
    error = info.value
    assert error.ename == "ZeroDivisionError"
    assert "Traceback on the target" in str(error)
    assert "return 1 / d" in error.remote_traceback and "fails(0)" in error.remote_traceback
    assert "agent.py" not in error.remote_traceback
    assert capsys.readouterr().out == "before\n"
    assert kernel.run("'fails' in globals()")  # what ran before the error stays, as in a cell


def test_unpicklable_result_is_a_clear_error(kernel):
    with pytest.raises(RemoteError, match="could not be pickled on the target"):
        kernel.run("(i for i in range(3))")


def test_large_array_travels_out_of_band(kernel, monkeypatch):
    sizes = []
    frame = envelope.frame

    def recording_frame(kind, request_id, data, buffers=(), **kw):
        header, body = frame(kind, request_id, data, buffers, **kw)
        sizes.append([memoryview(f).nbytes for f in body])
        return header, body

    monkeypatch.setattr(envelope, "frame", recording_frame)
    big = np.arange(25_000_000, dtype=np.float64)  # 200 MB
    big[-1] = -1.0
    kernel.push(big=big)
    assert sizes[0][0] < 1000 and sizes[0][1:] == [big.nbytes]  # a small pickle, one data frame
    assert kernel.run("big.flags.writeable, big.shape, big[-1], big[:5].sum()") == (
        True, (25_000_000,), -1.0, 10.0)
    back = kernel.run("big[:1000] * 2")
    assert back.flags.writeable and back[3] == 6.0


def test_fortran_and_readonly_arrays(kernel):
    arr = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    frozen = np.arange(5)
    frozen.flags.writeable = False
    kernel.push(arr=arr, frozen=frozen)
    got_arr, got_frozen = kernel.pull("arr", "frozen")
    assert got_arr.flags.f_contiguous and (got_arr == arr).all() and (got_frozen == frozen).all()


def test_second_target_on_the_same_kernel(kernel):
    from cloudpickle_ipy.ship.targets import connect

    kernel.push(shared="yes")
    with connect(kernel.channel.manager, timeout=30) as other:
        assert other.pull("shared") == "yes" and not other.owned
    assert kernel.alive and kernel.pull("shared") == "yes"  # closing it left the kernel up


def test_module_sources_shipped_once_per_change(kernel, tmp_path, monkeypatch):
    pkg = tmp_path / "edited_pkg_ship"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VERSION = 1\n")
    (pkg / "sub.py").write_text("def g():\n    return 'sub v1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import edited_pkg_ship  # noqa: F401  (registering needs it imported; .sub is not)

    core.register_pickle_by_value(sys.modules["edited_pkg_ship"])
    try:
        ns = define("""
            def use():
                import edited_pkg_ship
                from edited_pkg_ship.sub import g
                return edited_pkg_ship.VERSION, g()
        """)
        start = len(kernel.sources.shipments)
        assert kernel.run("import sys; any('edited_pkg_ship' in p for p in sys.path)") is False
        assert kernel.call(ns.use) == (1, "sub v1")
        assert kernel.sources.shipments[start:] == [["edited_pkg_ship", "edited_pkg_ship.sub"]]
        assert kernel.call(ns.use) == (1, "sub v1")
        assert len(kernel.sources.shipments) == start + 1  # unchanged: nothing re-sent
        (pkg / "sub.py").write_text("def g():\n    return 'sub v2'\n")
        assert kernel.call(ns.use) == (1, "sub v2")
        assert kernel.sources.shipments[start + 1:] == [["edited_pkg_ship.sub"]]
    finally:
        core.unregister_pickle_by_value(sys.modules["edited_pkg_ship"])
        for name in [n for n in sys.modules if n.startswith("edited_pkg_ship")]:
            del sys.modules[name]


def test_a_script_calling_code_the_target_cannot_import_is_told_how_to_fix_it(tmp_path):
    from tests.fresh import run_script

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "script_only_lib.py").write_text("def f(x):\n    return x + 1\n")
    out = run_script(f"""
        import sys
        sys.path.insert(0, {str(lib)!r})  # importable by the script, not by its kernel
        import cloudpickle_ipy, script_only_lib
        from cloudpickle_ipy.ship import RemoteError
        with cloudpickle_ipy.connect("local", timeout=60) as kernel:
            try:
                kernel.call(script_only_lib.f, 1)
            except RemoteError as exc:
                print(str(exc).splitlines()[0])
            cloudpickle_ipy.register_pickle_by_value(script_only_lib)
            print(kernel.call(script_only_lib.f, 1))
    """, cwd=tmp_path)
    first, second = out.decode().splitlines()
    assert first == (
        "ModuleNotFoundError: the payload could not be loaded on the target: ModuleNotFoundError: "
        "No module named 'script_only_lib' (script_only_lib is importable here but not on the "
        "target: pickle it by value so that its code travels: "
        "cloudpickle_ipy.register_pickle_by_value(script_only_lib) in a script, "
        "%pickle_by_value script_only_lib in IPython)")
    assert second == "2"
