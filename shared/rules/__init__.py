"""Alert rules: the YAML schema, the compiled engine and where the rules come from."""
