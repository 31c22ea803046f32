"""The microcourt benchmark (``python -m bench``): see bench/README.md."""
