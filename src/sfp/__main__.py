"""``python -m sfp`` is the ``sfp`` command."""

import sys

from sfp.cli import main

sys.exit(main())
