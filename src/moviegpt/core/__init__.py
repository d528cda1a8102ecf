"""What every stage shares, at the bottom: a run's settings (config, settings) and records (artifacts, rundir,
reference), the project it belongs to, checks of outside input (validate, errors), the machine (hardware, mfu), the
terminal (progress), the hub (hub) and intervals (stats). Imports nothing above it."""
