"""Helpers every stage uses: atomic files, safe file names, paths, wording, helper
processes and the pools that run background work. Imports nothing else of the app."""
