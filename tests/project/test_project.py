import re

import tomllib
import yaml
from conftest import PROJECT_ROOT


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pyproject = set(project["dependencies"]) | {r for reqs in project["optional-dependencies"].values() for r in reqs}
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = [d for d in pip if not d.startswith("-e")]
    assert {_name(r): r for r in conda} == {_name(r): r for r in pyproject}  # same names and the same pins


def test_torch_is_a_range_that_cpu_and_cuda_builds_satisfy():
    from packaging.requirements import Requirement

    deps = {
        Requirement(r).name: Requirement(r)
        for r in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    assert {"2.13.0", "2.13.0+cpu", "2.11.0+cu130"} <= {
        v for v in ("2.13.0", "2.13.0+cpu", "2.11.0+cu130") if deps["torch"].specifier.contains(v, prereleases=True)
    }
    assert str(deps["jupyter-book"].specifier) in ("<2,>=1.0.4", ">=1.0.4,<2")
    setup = (PROJECT_ROOT / "scripts" / "setup.sh").read_text()
    assert 'pip install --quiet "torch==2.13.0"' in setup and "nvidia-smi" in setup  # the CPU build where no GPU


IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn", "huggingface_hub": "huggingface_hub"}
USED_WITHOUT_IMPORT = {  # declared, used, but not imported by moviegpt's own code; why each is needed
    "jupyter-book": "builds the book (scripts/build_book.sh)",
    "ipykernel": "the kernel that executes the book's chapters",
    "gguf": "transformers reads the stand-in's GGUF file with it (moviegpt.model.assets)",
    "accelerate": "Trainer needs it (transformers' training extra)",
    "tokenizers": "the fast tokenizers transformers builds on",
    "safetensors": "the weight format every save and load uses",
}


def test_no_declared_dependency_goes_unused():
    from packaging.requirements import Requirement

    deps = [
        Requirement(r).name
        for r in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    code = "\n".join(p.read_text() for p in sorted((PROJECT_ROOT / "src" / "moviegpt").rglob("*.py")))
    for dep in deps:
        name = IMPORT_NAMES.get(dep, dep.replace("-", "_"))
        imported = re.search(rf"^\s*(import|from) {name}\b", code, re.M) is not None
        assert imported != (dep in USED_WITHOUT_IMPORT), f"{dep}: imported={imported}"
