"""The package sits at the repository's top level, and its core needs nothing but the standard
library: a worker or a kernel being bootstrapped imports it bare."""
import subprocess
import sys
from pathlib import Path

import cloudpickle_ipy

CHECKOUT = Path(__file__).resolve().parents[2]


def test_the_package_is_the_checkouts_top_level_folder():
    assert Path(cloudpickle_ipy.__file__).resolve().parent == CHECKOUT / "cloudpickle_ipy"
    assert not (CHECKOUT / "src").exists()


def test_the_core_imports_without_site_packages():
    # -S: no site-packages at all; -I: no environment variables, no user site, no script folder.
    code = (f"import sys; sys.path.insert(0, {str(CHECKOUT)!r}); import cloudpickle_ipy.core as c; "
            f"print(c.loads(c.dumps(lambda x: x + 1))(1))")
    proc = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True,
                          cwd="/", timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "2"), proc.stderr
