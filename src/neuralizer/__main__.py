import sys

from neuralizer.cli import main

sys.exit(main())
