"""`python -m forcefit …` (what torchrun runs: `torchrun --nproc_per_node N -m forcefit train config.yaml`)."""

import sys

from forcefit.cli import main

sys.exit(main())
