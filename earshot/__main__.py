import sys

from earshot.cli.app import main

sys.exit(main())
