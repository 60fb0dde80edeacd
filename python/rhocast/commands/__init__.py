"""Sub-commands of the ``rhocast`` command line, one module each (see :mod:`rhocast.cli`)."""
