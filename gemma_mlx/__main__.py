"""python -m gemma_mlx: the gemma-mlx command line."""

import sys

from .cli import main

sys.exit(main())
