"""Without the igos[ray] extra, --ray fails at once with a message that says how to install it."""

import sys

from igos.cli import main


def test_ray_flag_without_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    code = main(["bench", str(tmp_path), "--out", str(tmp_path / "run"), "--ray"])
    assert code == 2 and "pip install 'igos[ray]'" in capsys.readouterr().err
    code = main(["explain", str(tmp_path), "--ray"])
    assert code == 2 and "igos[ray]" in capsys.readouterr().err
