import sys

from bench.controlroom.run import main

sys.exit(main(sys.argv[1:]))
