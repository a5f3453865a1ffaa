"""The device layer: transport (ports, raw REPL, framed transfers), the command channel client, device-side code, probe/reset/audit, port ownership."""
