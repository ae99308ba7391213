"""Catalogue cases for the information losses (stub)."""
