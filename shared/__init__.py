"""All logic and adapters of AOC Functions. Never imports azure.functions."""
