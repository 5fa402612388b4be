"""Reports: layer tables, result summaries."""
