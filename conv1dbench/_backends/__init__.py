"""One module per backend, each holding only its algorithm; see :mod:`conv1dbench._registry`."""
