"""The command line: the parser and its entry point (parser), the commands (commands), the demo server (demo)."""
