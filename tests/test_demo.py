"""The README's Quick start main command, ``python -m cloudpickle_ipy.demo``: it runs
``notebooks/quickstart.ipynb`` in a real kernel, which ships cells to a real ``local`` target."""
import subprocess
import sys

from cloudpickle_ipy import demo


def test_demo_runs_the_quickstart_flow_end_to_end():
    done = subprocess.run([sys.executable, "-m", "cloudpickle_ipy.demo"], capture_output=True,
                          text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert done.stderr == ""
    assert "Done: every cell of quickstart.ipynb ran as intended." in out
    # The watcher registered the package written in the temporary folder.
    assert "[stdout] cloudpickle_ipy: pickling mylib by value (edited in ./mylib)" in out
    # Printed on the target, relayed; mylib imported there from the shipped source.
    assert ("[stdout] on the target: another process: True; mylib loaded by ShippedModules"
            in out)
    # Values computed on the target came back as cell results: before and after the edit.
    assert "Out[5]: 7.375" in out
    assert "Out[6]: Stats([35.0, 40.0, 22.5, 50.0])" in out
    assert "Out[9]: [7.5, 8.5, 5.0, 10.5]" in out
    # The error on the target, shown with the target's traceback.
    assert "[error] Traceback on the target local (most recent call last):" in out
    assert "[error] ZeroDivisionError: division by zero" in out
    assert "alive" in out  # %cloudpickle_target's listing


def test_demo_says_clearly_when_the_notebook_is_missing(tmp_path, capsys):
    assert demo.main([str(tmp_path / "nowhere.ipynb")]) == 1
    assert "no notebook at" in capsys.readouterr().err
