import sys

from fluxseg.cli import main

sys.exit(main())
