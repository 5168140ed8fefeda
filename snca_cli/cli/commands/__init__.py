"""One module per ``snca`` sub-command; each exposes ``register(app)``."""
