"""`python -m tokclf.cli ...` (what `accelerate launch -m tokclf.cli stage train` runs)."""

import sys

from tokclf.cli.main import main

sys.exit(main())
