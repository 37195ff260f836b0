import sys

from sensor.cli import main

sys.exit(main())
