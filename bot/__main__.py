"""``python -m bot`` is ``pte-bot``."""

import sys

from bot.cli import main

sys.exit(main())
