"""Helpers of `bench/screen_pop.py`: the server-side process, the bare relay, the agent fleet."""
