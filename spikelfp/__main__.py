import sys

from spikelfp.cli import main

sys.exit(main())
