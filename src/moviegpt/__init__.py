"""moviegpt: fine-tune a causal language model on movie overviews, evaluate it, and report on it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moviegpt")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0.2.0"

from moviegpt.core.config import Config  # noqa: E402
from moviegpt.core.errors import UserError  # noqa: E402
from moviegpt.core.settings import load_config  # noqa: E402

__all__ = ["Config", "UserError", "load_config", "__version__"]
