"""The floor every package may import: the event bus, event types, errors."""
