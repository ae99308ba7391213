"""Catalogue cases for the classification losses (stub)."""
