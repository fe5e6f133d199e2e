"""One module per ``chainrule`` subcommand; each defines ``register(subparsers)``."""
