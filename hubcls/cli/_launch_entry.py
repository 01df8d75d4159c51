"""Script that paddle.distributed.launch runs in every worker (it needs a file path, not a module)."""
import sys

from hubcls.cli import main

if __name__ == "__main__":
    sys.exit(main())
