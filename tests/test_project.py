import re
import tomllib

import yaml

from moviegpt.config import PROJECT_ROOT


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pyproject = set(project["dependencies"]) | {r for reqs in project["optional-dependencies"].values() for r in reqs}
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = [d for d in pip if not d.startswith("-e")]
    assert {_name(r): r for r in conda} == {_name(r): r for r in pyproject}  # same names and the same pins


def test_torch_is_pinned_to_the_cpu_build_that_installs_offline():
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps and "jupyter-book>=1.0.4,<2" in deps
