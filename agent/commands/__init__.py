"""The technician's and the daemon's subcommands: one module each, with add_parser() and run()."""
