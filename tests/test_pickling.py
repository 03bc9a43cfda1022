"""Fitted components carry the user's own code: they load where that code is not importable."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from regrow import _pickling
from regrow.cli import load_system
from regrow.demo import make_window
from regrow.errors import ComponentError
from regrow.workspace import Workspace

HELPERS = "import numpy as np\n\ndef log_fee(X):\n    return np.log1p(X)\n"
SYSTEM = textwrap.dedent(
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import FunctionTransformer
    from regrow import Member, System, Transform
    import helpers

    def double(X):
        return X * 2

    system = System("c", target="churned", components=[
        Transform("fee", FunctionTransformer(helpers.log_fee), inputs=["monthly_fee"]),
        Transform("twice", FunctionTransformer(double), inputs=["tenure_months"]),
        Member("m", LogisticRegression(), inputs=["fee", "twice"]),
    ])
    """
)


def test_a_version_using_helper_modules_loads_in_a_process_without_them(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers.py").write_text(HELPERS)
    (project / "my_system.py").write_text(SYSTEM)
    try:
        system = load_system(f"{project / 'my_system.py'}:system")
        with Workspace.init(tmp_path / "ws") as ws:
            data = make_window(300, start="2026-01-01", days=10, seed=0)
            ref = ws.train(system, ws.snapshot(data, name="d"), workers=1).version.ref
            expected = ws.load(ref).predict_proba(data)[:, 1].round(12).tolist()
    finally:
        for name in ("helpers", "my_system"):
            sys.modules.pop(name, None)
        if str(project) in sys.path:
            sys.path.remove(str(project))
    # The project folder is renamed away: neither module can be imported any more.
    project.rename(tmp_path / "moved")
    script = (
        "import json, sys\n"
        "from regrow import Workspace\n"
        "from regrow.demo import make_window\n"
        f"ws = Workspace.open({str(tmp_path / 'ws')!r})\n"
        "data = make_window(300, start='2026-01-01', days=10, seed=0)\n"
        f"print(json.dumps(ws.load({ref!r}).predict_proba(data)[:, 1].round(12).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    import json

    assert json.loads(done.stdout) == expected


def test_an_old_artifact_naming_a_missing_module_is_a_clear_error() -> None:
    # What plain pickle wrote before: a reference to a module that is not importable here.
    data = pickle.dumps(len).replace(b"builtins", b"gone_mod")
    with pytest.raises(ComponentError, match="'gone_mod'") as info:
        _pickling.loads(data, what="component 'fee'")
    assert "PYTHONPATH" in (info.value.hint or "")


def test_a_module_imported_after_an_earlier_dump_still_travels_by_value(tmp_path: Path) -> None:
    # user_modules() judges only what changed in sys.modules since its last call: a helper
    # imported after a first dump must still be pickled by value, and one removed must not
    # be held on to.
    _pickling.dumps(len)
    (tmp_path / "late_helper.py").write_text("def triple(x):\n    return 3 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import late_helper  # type: ignore[import-not-found]

        data = _pickling.dumps(late_helper.triple)
        from regrow._modules import user_modules

        assert late_helper in user_modules()
    finally:
        sys.modules.pop("late_helper", None)
        sys.path.remove(str(tmp_path))
    assert all(m.__name__ != "late_helper" for m in user_modules())
    load = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read())(2))"
    done = subprocess.run(
        [sys.executable, "-c", load], input=data, cwd=tmp_path.parent, capture_output=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"6"
