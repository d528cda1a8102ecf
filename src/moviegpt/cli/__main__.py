"""`python -m moviegpt.cli ...`: the command line, as torchrun and accelerate launch start it."""

import sys

from moviegpt.cli.parser import main

sys.exit(main())
