"""`python -m faceswap` is the `faceswap` command."""
import sys

from faceswap.cli import main

sys.exit(main())
