"""Inside-workflow runtime: decorators, commands, journal replay. No I/O."""
