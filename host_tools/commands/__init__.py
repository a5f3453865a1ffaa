"""The handlers of the `cryo` commands, one module per command group (the table is ``host_tools.cli``)."""
