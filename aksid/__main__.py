import sys

from aksid.cli import main

sys.exit(main())
