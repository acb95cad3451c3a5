import sys

from mattekit.cli.main import main

sys.exit(main())
