"""`cryo serve`: the archive as web pages (Flask, server-rendered, uPlot charts vendored)."""
