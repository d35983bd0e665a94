"""The compose files of ``shoal stack deploy``: load (YAML, interpolation, checks, merge) and
convert to Engine API specs, as docker's ``cli/compose`` loader and convert packages do."""

__all__: list[str] = []
