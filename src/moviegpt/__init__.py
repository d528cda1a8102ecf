"""moviegpt: fine-tune a causal language model on movie overviews, evaluate it, and report on it."""
from moviegpt.config import Config, load_config
from moviegpt.errors import UserError

__version__ = "0.1.0"
__all__ = ["Config", "UserError", "load_config", "__version__"]
