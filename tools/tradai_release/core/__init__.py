"""The foundation: settings, errors, files and YAML, hashing, the clock; imports nothing of the project."""
