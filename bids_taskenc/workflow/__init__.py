"""The workflow layer: one participant's run and the group's run, from typed settings to written derivatives.

``cli/`` parses the command line and the TOML config into the frozen settings dataclasses of this package and turns
errors into exit codes; everything a run does between the two happens here, as steps that read like the method.
The engines (``features/``, ``encoding/``) below it take arrays and return arrays.
"""
