"""Command-line interface: `rsmi <command>`; each command lives in its own module."""
