"""`python -m relay.cli`: how `relay serve` starts its dispatcher and drain children."""

import sys

from relay.cli.main import main

sys.exit(main())
