"""``python -m memesh`` behaves exactly like the ``memesh`` console script."""
import sys

from memesh.cli.main import main

sys.exit(main())
