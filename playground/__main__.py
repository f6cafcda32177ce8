import sys

from playground.runner import main

sys.exit(main())
