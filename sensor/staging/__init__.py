"""Staged files: a safe walk of folders and files read into ContentObjects."""
