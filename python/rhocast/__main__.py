import sys

from rhocast.cli import main

sys.exit(main())
